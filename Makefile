# Fresh-machine entry points. Each target creates/updates the virtual environment it needs.
#   make demo   run the whole pipeline (job full_pipeline: prepare, train the paper's two backbones and the
#               colour-quality variant, evaluate, render) on the embedded demo paintings with tiny networks, then
#               print a summary
#   make test   run the test suite
#   make train-demo  a small CPU training (U-Net-256, 2 epochs, 16 channels) on the demo dataset
#   make ui     open the Dagster UI (http://127.0.0.1:3000)
#   make bench  run the benchmarks

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LPD_STORAGE ?= $(CURDIR)/storage
# make splits words at spaces, so a storage path with spaces would be cut in two (and clean-storage would
# delete the wrong folders): refuse it.
ifneq ($(words $(LPD_STORAGE)),1)
$(error LPD_STORAGE is "$(LPD_STORAGE)": make needs one path without spaces (the default is storage/ in this \
folder); set LPD_STORAGE=/a/path/without/spaces, or run the Dagster commands of the README directly)
endif
# Dagster wants an absolute DAGSTER_HOME; a relative LPD_STORAGE is taken from the repo root.
override LPD_STORAGE := $(abspath $(LPD_STORAGE))
export LPD_STORAGE
export DAGSTER_HOME ?= $(LPD_STORAGE)/dagster_home

.PHONY: install demo prepare-demo train-demo test ui bench clean-storage

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: on the project machines these wheels come from local disk (CPU-capable CUDA build).
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp config/dagster.yaml $@

# One run covers the paper's two backbones and the colour-quality variant: the partition range
# resnet9..unet256-colour (single-run backfill of the model assets; models/recipes.py lists them first).
MAIN_RANGE := '{"dagster/asset_partition_range_start": "resnet9", "dagster/asset_partition_range_end": "unet256-colour"}'

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m lpd_pipeline.metrics.weights
	@# FutureWarning off: the dagster CLI announces that `dg launch` supersedes `dagster job execute`.
	PYTHONWARNINGS=ignore::FutureWarning $(BIN)/dagster job execute -m lpd_pipeline -j full_pipeline \
		-c config/demo.yaml --tags $(MAIN_RANGE)
	@$(BIN)/python -m lpd_pipeline.summary --demo

prepare-demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster job execute -m lpd_pipeline -j prepare_dataset

train-demo: prepare-demo
	$(BIN)/dagster job execute -m lpd_pipeline -j train_models -c config/train_demo.yaml \
		--tags '{"dagster/partition": "unet256"}'

test: install
	$(BIN)/python -m pytest -q -rs -n 2 --dist loadgroup --durations=15

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/train_speed.py --backbone unet256 --size 256 --batch 1 --steps 3

clean-storage:
	rm -rf $(LPD_STORAGE)/dataset $(LPD_STORAGE)/assets $(LPD_STORAGE)/training $(LPD_STORAGE)/evaluation \
		$(LPD_STORAGE)/renders $(LPD_STORAGE)/reports

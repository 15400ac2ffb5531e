"""The asset graph reads as the mission: every asset in one stage group, with a description, an owner, kinds and
a stage tag, and no edge that runs from a later stage back to an earlier one."""

from lpd_pipeline.defs.stages import OWNERS, STAGES


def test_every_asset_is_in_a_stage_with_description_owner_kinds_and_tag():
    from lpd_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in STAGES, key
        assert node.description and len(node.description) > 40, key
        assert node.owners == [OWNERS[node.group_name]], key
        assert node.kinds, key
        assert node.tags.get("stage") == node.group_name, key
        groups[key] = node.group_name
    assert set(groups.values()) == set(STAGES)
    for key, stage in groups.items():
        for parent in graph.get(key).parent_keys:
            assert STAGES.index(groups[parent]) <= STAGES.index(stage), (parent, key)


def test_the_jobs_select_the_stages_they_name():
    from lpd_pipeline.definitions import defs

    def assets(job):
        return {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.executable_asset_keys}

    assert assets("prepare_dataset") == {"raw_paintings", "deduplicated_paintings", "painting_tiles", "tile_pairs",
                                         "pix2pix_aligned_export"}
    assert assets("train_models") == {"trained_generator"}
    assert assets("evaluate_checkpoints") == {"checkpoint_evaluations", "best_checkpoint", "backbone_comparison"}
    assert assets("render_masterpieces") == {"colorized_masterpieces", "results_page", "survey_kit"}

"""pix2pix networks (networks.py), colour-space encodings (colorspace.py) and the choices they accept
(options.py). Import from the submodules: this package imports nothing itself, so reading the options does not
load torch."""

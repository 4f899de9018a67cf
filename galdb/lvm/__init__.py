"""Large vision models: specs and loading, preprocessing, batch embedding, pretraining.

A model is named by a spec string:

* ``galdb:default`` — the encoder shipped inside the package (:mod:`galdb.lvm.builtin`), the
  default of ``galdb embed``;
* ``timm:<name>`` — a timm architecture with random weights (seeded, so reproducible);
* ``hf-hub:<repo>`` — weights from the Hugging Face hub through timm, e.g.
  ``hf-hub:mwalmsley/zoobot-encoder-convnext_nano`` (Zoobot, trained on Galaxy Zoo DECaLS);
* ``checkpoint:<path>`` — a file written by ``galdb lvm pretrain`` (architecture,
  preprocessing and weights in one file).
"""

"""Reference FLAVA trainer (arXiv 2112.04482) in plain PyTorch, used to validate PMD builds end to end.

Modules: ``config`` (typed configs), ``attention``/``model`` (encoders and heads), ``masking``
(BEiT block masks, MLM 80/10/10), ``codebook`` (visual-code targets), ``losses`` (GC with
all-gather, MMM, ITM, MIM, MLM), ``data`` (shards → batches through ``pmd.loaders``), ``trainer`` (the
loop), ``checkpoint`` (tensors and plain data only), ``distributed``, ``validate`` (held-out report with a
shuffled control: PASS / FAIL / INCONCLUSIVE), ``run`` (``pmd train --data``: streaming training with
resume) and ``score`` (``pmd score``: per-pair alignment scores). Local Flickr8k/COCO folders are a build
input: the ``image_folder`` source (``pmd.sources.local_folder``).
"""

"""Reference FLAVA trainer (arXiv 2112.04482) in plain PyTorch, used to validate PMD builds end to end.

Modules: ``config`` (typed configs), ``attention``/``model`` (encoders and heads), ``masking``
(BEiT block masks, MLM 80/10/10), ``codebook`` (visual-code targets), ``losses`` (GC with
all-gather, MMM, ITM, MIM, MLM), ``data`` (shards → batches), ``trainer`` (the loop),
``checkpoint``, ``distributed``, ``validate`` (held-out report with a shuffled control), ``run``
(``pmd train --data``: streaming training with resume) and ``realdata`` (Flickr8k/COCO folders → a build).
"""

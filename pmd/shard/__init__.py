"""Reproducible WebDataset shards, Parquet sidecars and build manifests.

The one tar writer (``TarShardWriter`` / ``write_tar_shard``, on the byte-exact ``tar_format``) and the
one manifest reader/writer (``read_manifest`` / ``write_manifest``) of pmd; every build, loader,
exporter and stats reader goes through these names (API notes: docs/ARCHITECTURE.md).
"""

from pmd.shard.manifest import (INTERLEAVED_KIND, KINDS, MANIFEST_NAME, PAIRS_KIND, manifest_fingerprint,
                                manifest_location, manifest_shards, read_manifest, runtime_versions,
                                shard_entries, verify_manifest, versions, write_manifest)
from pmd.shard.tar_writer import (ShardInfo, TarShardWriter, plan_shards, read_tar_shard, sha256_file,
                                  shard_exists_complete, write_parquet_sidecar, write_tar_shard)

__all__ = ["INTERLEAVED_KIND", "KINDS", "MANIFEST_NAME", "PAIRS_KIND", "ShardInfo", "TarShardWriter",
           "manifest_fingerprint", "manifest_location", "manifest_shards", "plan_shards", "read_manifest",
           "read_tar_shard", "runtime_versions", "sha256_file", "shard_entries", "shard_exists_complete",
           "verify_manifest", "versions", "write_manifest", "write_parquet_sidecar", "write_tar_shard"]

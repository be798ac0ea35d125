"""Reproducible WebDataset shards, Parquet sidecars and build manifests."""

from pmd.shard.manifest import (manifest_fingerprint, read_manifest, verify_manifest, versions,
                                write_manifest)
from pmd.shard.tar_writer import (ShardInfo, plan_shards, read_tar_shard, sha256_file, shard_exists_complete,
                                  write_parquet_sidecar, write_tar_shard)

__all__ = ["ShardInfo", "manifest_fingerprint", "plan_shards", "read_manifest", "read_tar_shard", "sha256_file",
           "shard_exists_complete", "verify_manifest", "versions", "write_manifest", "write_parquet_sidecar",
           "write_tar_shard"]

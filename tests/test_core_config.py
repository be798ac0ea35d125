from dataclasses import dataclass, field
from typing import Literal

import pytest

from pmd import config
from pmd.config import ConfigError


@dataclass(frozen=True)
class Download:
    timeout: float = 10.0
    retries: int = 1
    allow_loopback: bool = False


@dataclass(frozen=True)
class Job:
    name: str = "job"
    mode: Literal["local", "cluster"] = "local"
    sources: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    download: Download = field(default_factory=Download)
    seed: int | None = None


def test_defaults_and_nested_values(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nsources: [coco, sbu_captions]\ndownload:\n  timeout: 3\n  allow_loopback: true\nlimits: {coco: 5}\n")
    cfg = config.load(Job, p)
    assert cfg == Job(name="x", sources=("coco", "sbu_captions"), limits={"coco": 5},
                      download=Download(timeout=3.0, allow_loopback=True))
    assert isinstance(cfg.download.timeout, float)
    assert config.load(Job) == Job()


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("download:\n  retires: 3\n")
    with pytest.raises(ConfigError, match=r"download\.retires"):
        config.load(Job, p)
    with pytest.raises(ConfigError, match="'nmae'"):
        config.load(Job, {"nmae": "x"})


@pytest.mark.parametrize("data, match", [
    ({"download": {"retries": "3"}}, "download.retries: expected an integer"),
    ({"download": {"retries": True}}, "download.retries"),
    ({"mode": "yarn"}, "mode: 'yarn' is not one of"),
    ({"sources": "coco"}, "sources: expected a list"),
    ({"download": 5}, "download: expected a mapping"),
])
def test_wrong_types_are_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        config.load(Job, data)


def test_overrides_and_dump_round_trip():
    cfg = config.load(Job, {"name": "a"}, overrides={"download.retries": 4, "seed": 7})
    assert cfg.download.retries == 4 and cfg.seed == 7
    text = config.dump(cfg)
    assert "retries: 4" in text
    import yaml
    assert config.load(Job, yaml.safe_load(text)) == cfg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(Job, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(Job, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load(Job, lst)


@dataclass(frozen=True)
class _Checked:
    k: int = 5

    def __post_init__(self) -> None:
        if self.k not in (1, 5, 10):
            raise ValueError(f"k must be 1, 5 or 10, not {self.k}")


@dataclass(frozen=True)
class _Outer:
    inner: _Checked = field(default_factory=_Checked)


def test_a_value_refused_by_the_dataclass_is_a_config_error_naming_where():
    with pytest.raises(ConfigError, match=r"^inner: k must be 1, 5 or 10, not 3"):
        config.load(_Outer, {"inner": {"k": 3}})
    assert config.load(_Outer, {"inner": {"k": 10}}).inner.k == 10

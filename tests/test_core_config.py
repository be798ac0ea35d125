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


def test_parse_overrides_is_the_one_set_parser():
    assert config.parse_overrides(["a=1", "b.c = [x, 2]", "d=", "e=null", "f='007'", "g=k=v"]) == {
        "a": 1, "b.c": ["x", 2], "d": None, "e": None, "f": "007", "g": "k=v"}
    for bad, match in [("noequals", "expected KEY=VALUE"), ("=1", "expected KEY=VALUE"), ("a..b=1", "expected KEY=VALUE"),
                       ("k=[1", r"'\[1' is not a YAML value .*line 1"), ("k={a: 1", "is not a YAML value")]:
        with pytest.raises(ConfigError, match=match) as e:
            config.parse_overrides([bad])
        assert "\n" not in str(e.value)


def test_overrides_are_dotted_and_do_not_touch_the_callers_data():
    data = {"download": None, "name": "a"}
    cfg = config.load(Job, data, overrides={"download.retries": 3, "limits.coco": 2})
    assert cfg.download.retries == 3 and cfg.limits == {"coco": 2}
    assert data == {"download": None, "name": "a"}
    with pytest.raises(ConfigError, match="name is not a section"):
        config.load(Job, data, overrides={"name.x": 1})


@dataclass(frozen=True)
class _Ranged:
    n: int = field(default=1, metadata=config.bounds(ge=1))
    p: float | None = field(default=None, metadata=config.bounds(gt=0, le=1))


@dataclass(frozen=True)
class _WithSection:
    ranged: _Ranged = field(default_factory=_Ranged)
    section: dict = field(default_factory=dict, metadata=config.schema("tests.test_core_config:Download"))


def test_bounds_refuse_out_of_range_values_naming_the_key():
    assert config.load(_WithSection, {"ranged": {"n": 5, "p": 1}}).ranged == _Ranged(5, 1.0)
    assert config.load(_WithSection, {"ranged": {"p": "1e-3"}}).ranged.p == 0.001  # YAML 1.1 reads 1e-3 as text
    for data, match in [({"ranged": {"n": 0}}, r"^ranged.n: must be >= 1, got 0$"),
                        ({"ranged": {"p": 0}}, r"^ranged.p: must be > 0, got 0.0$"),
                        ({"ranged": {"p": float("nan")}}, r"^ranged.p: must be > 0, got nan$"),
                        ({"ranged": {"p": 1.5}}, r"^ranged.p: must be <= 1, got 1.5$")]:
        with pytest.raises(ConfigError, match=match):
            config.load(_WithSection, data)


def test_schema_checks_a_mapping_section_at_load_and_keeps_it_a_dict():
    cfg = config.load(_WithSection, None, overrides={"section.retries": 4})
    assert cfg.section == {"retries": 4}
    with pytest.raises(ConfigError, match=r"unknown config key 'section.retires'"):
        config.load(_WithSection, None, overrides={"section.retires": 4})
    with pytest.raises(ConfigError, match=r"section.timeout: expected a number"):
        config.load(_WithSection, {"section": {"timeout": "soon"}})


def test_unreadable_config_files_are_one_line_each(tmp_path):
    cases = {"dir": None, "binary.yaml": bytes(range(256)), "nul.yaml": b"a: \x00\n", "list.yaml": b"- 1\n",
             "scalar.yaml": b"just text\n", "bad.yaml": b"a: [1\n"}
    for name, body in cases.items():
        p = tmp_path / name
        p.mkdir() if body is None else p.write_bytes(body)
        with pytest.raises(ConfigError) as e:
            config.load(Job, p)
        assert "\n" not in str(e.value) and name in str(e.value)
    (tmp_path / "empty.yaml").write_text("")
    assert config.load(Job, tmp_path / "empty.yaml") == Job()

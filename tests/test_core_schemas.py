import pyarrow as pa
import pytest

from pmd import schemas
from pmd.records import Crop, ImageRef, InterleavedDocument, PairRecord
from pmd.schemas import SchemaError


def test_all_schemas_load():
    names = schemas.available()
    assert {"pair", "interleaved_document", "download_status", "manifest", "pmd_export"} <= set(names)
    for n in names:
        assert len(schemas.load_schema(n)) > 0


def test_pmd_export_schema_has_pmd_columns():
    assert schemas.load_schema("pmd_export").names == ["image_url", "image", "text", "source", "meta"]


def test_pair_rows_validate():
    rows = [PairRecord("coco", "a cat", ImageRef(path="train2014.zip::x.jpg")).to_row(),
            PairRecord("visual_genome", "a clock", ImageRef(url="http://h/1.jpg", crop=Crop(1, 2, 3, 4))).to_row()]
    table = schemas.table_from_rows(rows, "pair")
    assert table.num_rows == 2 and table.column("crop_width").to_pylist() == [None, 3]


def test_interleaved_rows_validate():
    doc = InterleavedDocument("http://p", ["a", None], [None, "http://p/i.jpg"])
    t = schemas.table_from_rows([doc.to_row()], "interleaved_document")
    assert t.column("images").type == pa.list_(pa.string())


def test_validate_names_every_problem():
    t = pa.table({"id": pa.array(["a", None]), "source": pa.array([1, 2])})
    with pytest.raises(SchemaError) as e:
        schemas.validate(t, "pair")
    msg = str(e.value)
    assert "'id' has 1 nulls" in msg and "'source' is int64, expected string" in msg and "missing column 'text'" in msg


def test_unknown_schema():
    with pytest.raises(SchemaError, match="no schema 'nope'"):
        schemas.load_schema("nope")


def test_empty_rows_give_empty_table():
    assert schemas.table_from_rows([], "download_status").num_rows == 0

"""`seglab predict` exits 1 when nothing could be predicted (errors.txt still written), 0 when anything was."""
import pytest

import seglab
from seglab.cli import main
from seglab.data.io import DataError
from test_inference_common import save_image, smooth_image, tiny_checkpoint


def predict(source, out, capsys):
    code = main(["predict", f"model={tiny_checkpoint()}", f"source={source}", f"out={out}", "verbose=false"])
    return code, capsys.readouterr().err


def test_a_single_unreadable_file_exits_1(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n not really a png")
    code, err = predict(bad, tmp_path / "out", capsys)
    assert code == 1 and "nothing could be predicted" in err
    assert "broken.png" in (tmp_path / "out" / "errors.txt").read_text()


def test_a_folder_without_a_usable_image_exits_1(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "empty.png").write_bytes(b"")
    (source / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    code, err = predict(source, tmp_path / "out", capsys)
    assert code == 1 and "2 input(s) failed" in err
    errors = (tmp_path / "out" / "errors.txt").read_text()
    assert "empty.png" in errors and "cut.jpg" in errors


def test_one_usable_image_is_enough_for_exit_0(tmp_path, capsys):
    source = tmp_path / "src"
    save_image(source / "good.png", smooth_image(40, 30))
    (source / "empty.png").write_bytes(b"")
    code, _ = predict(source, tmp_path / "out", capsys)
    assert code == 0 and (tmp_path / "out" / "good.png").exists()
    assert "empty.png" in (tmp_path / "out" / "errors.txt").read_text()


def test_python_predict_returns_the_folder_or_raises(tmp_path):
    save_image(tmp_path / "good.png", smooth_image(40, 30))
    out = seglab.predict(model=str(tiny_checkpoint()), source=str(tmp_path / "good.png"), out=str(tmp_path / "o"),
                         verbose=False)
    assert out == tmp_path / "o" and (out / "good.png").exists()
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(DataError, match="nothing could be predicted"):
        seglab.predict(model=str(tiny_checkpoint()), source=str(tmp_path / "bad.png"), out=str(tmp_path / "p"),
                       verbose=False)

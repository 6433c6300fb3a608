"""pet.download against a local HTTP server (127.0.0.1, port 0) serving archives built in the test."""
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from seglab.config import make_config
from seglab.data import load_pair, open_split
from seglab.data import pet
from seglab.data.download import extract
from seglab.data.io import DataError

NAMES = ["Bengal_1", "Bengal_2", "Bengal_3", "Abyssinian_1"]


class Server:
    """Serves `files` (name -> bytes); `requests` records the paths asked for."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.lstrip("/")
                if name == "truncated.tar.gz":  # promises more bytes than it sends, then hangs up
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + b"\0" * 100)
                    self.close_connection = True
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def targz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def official_archives(make_pet, tmp_path) -> dict[str, bytes]:
    """images.tar.gz and annotations.tar.gz with the files of a Pet layout, as the release packs them."""
    source = make_pet(NAMES[:3], NAMES[3:], root=tmp_path / "source")
    images = {f"images/{p.name}": p.read_bytes() for p in sorted((source / "images").iterdir())}
    annotations = {str(p.relative_to(source)): p.read_bytes()
                   for p in sorted((source / "annotations").rglob("*")) if p.is_file()}
    return {"images.tar.gz": targz(images), "annotations.tar.gz": targz(annotations)}


@pytest.fixture
def server():
    servers = []

    def start(files):
        servers.append(Server(files))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_download_extracts_the_official_layout(make_pet, tmp_path, server):
    srv = server(official_archives(make_pet, tmp_path))
    root = tmp_path / "data" / "pets"
    urls = [srv.url("images.tar.gz"), srv.url("annotations.tar.gz")]
    assert pet.download(root, urls=urls) == root
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(f"{n}.jpg" for n in NAMES)
    assert (root / "annotations" / "trainval.txt").is_file()
    assert not list(root.rglob("*.part"))
    spec = pet.load_split(root, "trainval")
    assert [i.stem for i, _ in spec.pairs] == NAMES[:3]
    image, mask = load_pair(spec, 0, 8)
    assert image.shape == (3, 8, 8) and set(np.unique(mask)) <= {0, 1, 2}
    assert srv.requests == ["/images.tar.gz", "/annotations.tar.gz"]
    pet.download(root, urls=urls)  # already there: nothing is fetched again
    assert len(srv.requests) == 2


def test_download_true_in_the_config_fetches_before_loading(make_pet, tmp_path, server, monkeypatch):
    srv = server(official_archives(make_pet, tmp_path))
    monkeypatch.setattr(pet, "OFFICIAL_ARCHIVES", [srv.url("images.tar.gz"), srv.url("annotations.tar.gz")])
    spec = open_split(make_config(data=str(tmp_path / "fresh"), download=True), "test")
    assert [i.stem for i, _ in spec.pairs] == ["Abyssinian_1"]


def test_a_failing_url_says_what_to_download(make_pet, tmp_path, server):
    srv = server(official_archives(make_pet, tmp_path))
    root = tmp_path / "pets"
    missing = srv.url("missing.tar.gz")
    with pytest.raises(DataError) as info:
        pet.download(root, urls=[srv.url("images.tar.gz"), missing])
    message = str(info.value)
    assert missing in message and "404" in message and "by hand" in message
    assert str(root) in message
    assert not list(root.rglob("*.part")) and not (root / "downloads" / "missing.tar.gz").exists()


def test_archive_saved_by_hand_is_used(make_pet, tmp_path, server):
    """What the error message asks for works: put the archives where it says and run again, offline."""
    archives = official_archives(make_pet, tmp_path)
    srv = server({})
    root = tmp_path / "pets"
    urls = [srv.url(name) for name in archives]
    with pytest.raises(DataError) as info:
        pet.download(root, urls=urls)
    target = Path(str(info.value).split("save it as ")[1].split()[0])
    assert target.parent == root / "downloads"
    for name, data in archives.items():
        (target.parent / name).write_bytes(data)
    pet.download(root, urls=urls)
    assert len(pet.load_split(root, "test").pairs) == 1


def test_unreachable_host(tmp_path):
    with pytest.raises(DataError, match=r"could not download https://thor\.robots\.ox\.ac\.uk/.*images\.tar\.gz"):
        pet.download(tmp_path / "pets")  # the official URLs; the test guard refuses to leave the machine
    assert not list(tmp_path.rglob("*.part"))


def test_connection_dropped_mid_download(tmp_path, server):
    srv = server({})
    with pytest.raises(DataError, match="truncated.tar.gz"):
        pet.download(tmp_path / "pets", urls=[srv.url("truncated.tar.gz")])
    assert not list(tmp_path.rglob("truncated.tar.gz*"))  # neither a .part nor a broken archive is kept


def test_archive_without_the_layout(tmp_path, server):
    srv = server({"other.tar.gz": targz({"readme.txt": b"hello"})})
    with pytest.raises(DataError, match="did not produce images/ and annotations/trimaps/"):
        pet.download(tmp_path / "pets", urls=[srv.url("other.tar.gz")])


def test_not_an_archive(tmp_path, server):
    srv = server({"page.tar.gz": b"<html>please log in</html>"})
    with pytest.raises(DataError, match=r"page\.tar\.gz: cannot unpack"):
        pet.download(tmp_path / "pets", urls=[srv.url("page.tar.gz")])


@pytest.mark.parametrize("members, links", [
    ({"images/a.jpg": b"x", "../escaped.txt": b"evil"}, None),
    ({"images/../../escaped.txt": b"evil"}, None),
    ({}, {"images/link": "../../escaped.txt"}),
    ({}, {"images/link": "/etc/passwd"}),
])
def test_path_traversal_in_a_tar_is_refused(tmp_path, server, members, links):
    srv = server({"evil.tar.gz": targz(members, links)})
    root = tmp_path / "a" / "pets"
    with pytest.raises(DataError, match=r"evil\.tar\.gz: cannot unpack"):
        pet.download(root, urls=[srv.url("evil.tar.gz")])
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (root / "images" / "link").is_symlink()


def test_absolute_member_names_stay_inside_the_root(tmp_path):
    archive = tmp_path / "abs.tar.gz"
    outside = tmp_path / "outside" / "escaped.txt"
    archive.write_bytes(targz({str(outside): b"evil"}))
    extract(archive, tmp_path / "pets")
    assert not outside.exists()
    assert (tmp_path / "pets" / str(outside).lstrip("/")).read_bytes() == b"evil"


def test_path_traversal_in_a_zip_is_refused(tmp_path):
    """A sibling folder whose name starts with the target's name is still outside it."""
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../pets2/escaped.txt", "evil")
    with pytest.raises(DataError, match="would unpack outside"):
        extract(archive, tmp_path / "pets")
    assert not (tmp_path / "pets2").exists()


def test_zip_archive_is_unpacked(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("images/a.txt", "fine")
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "images" / "a.txt").read_text() == "fine"

"""fastcnn.datasets: real data loads, damaged files fail loudly, downloads are atomic,
CSV parsing, splitting/batching helpers and single-image preprocessing.

Downloads are exercised against a local HTTP server; nothing touches the network.
"""

import dataclasses
import functools
import gzip
import http.server
import shutil
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fastcnn.datasets import (batches, checksums, dataset_info, download_file, kfold, load,
                              load_csv, load_fashion_mnist, load_image, load_kmnist, load_mnist,
                              one_hot, prepare_digit, read_idx, read_npz, registry, scale, status,
                              to_nchw, train_val_split, verify)
from fastcnn.errors import DatasetError, InputError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def fresh_checksum_memory():
    """Each test starts with no file remembered as verified."""
    checksums.forget()
    yield
    checksums.forget()


@pytest.fixture(scope="module")
def mnist_test_split(data_dir):
    return load_mnist("test", data_dir=data_dir)


def flip_byte(path, offset=-20):
    """Damage one byte: same size, different checksum."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def copy_files(source, destination, names):
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, destination / name)
    return destination


# --- real datasets -------------------------------------------------------------------


def test_mnist_loads_with_shapes_dtypes_and_published_label_counts(data_dir):
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert x_train.max() == 255 and x_train.flags.writeable


def test_split_option_returns_one_pair_equal_to_the_full_load(data_dir, mnist_test_split):
    x, y = mnist_test_split
    assert x.shape == (10000, 28, 28)
    _, (x_test, y_test) = load("MNIST", data_dir=data_dir)
    assert np.array_equal(x, x_test) and np.array_equal(y, y_test)


def test_fashion_mnist_loads_balanced_classes(data_dir):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_kmnist_test_split_is_the_same_from_idx_and_npz(data_dir, tmp_path):
    folder = data_dir / "kmnist"
    assert np.array_equal(read_idx(folder / "t10k-images-idx3-ubyte.gz"),
                          read_npz(folder / "kmnist-test-imgs.npz"))
    x_idx, y_idx = load_kmnist("test")
    copy_files(folder, tmp_path / "kmnist", ["kmnist-test-imgs.npz", "kmnist-test-labels.npz"])
    x_npz, y_npz = load_kmnist("test", data_dir=tmp_path)
    assert x_idx.shape == (10000, 28, 28) and np.bincount(y_idx).tolist() == [1000] * 10
    assert np.array_equal(x_idx, x_npz) and np.array_equal(y_idx, y_npz)


def test_kmnist_train_split_loads_from_idx_and_npz_alike(data_dir, tmp_path):
    x_idx, y_idx = load_kmnist("train")
    assert x_idx.shape == (60000, 28, 28) and x_idx.dtype == np.uint8
    assert np.bincount(y_idx).tolist() == [6000] * 10
    npz_only = copy_files(data_dir / "kmnist", tmp_path / "kmnist",
                          ["kmnist-train-imgs.npz", "kmnist-train-labels.npz"])
    x_npz, y_npz = load_kmnist("train", data_dir=npz_only.parent)
    assert np.array_equal(x_idx, x_npz) and np.array_equal(y_idx, y_npz)


def test_kmnist_train_images_missing_says_which_file_where_and_how_to_get_it(data_dir, tmp_path):
    folder = copy_files(data_dir / "kmnist", tmp_path / "kmnist",
                        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                         "train-labels-idx1-ubyte.gz"])
    with pytest.raises(DatasetError) as error:
        load_kmnist("train", data_dir=tmp_path)
    message = str(error.value)
    assert "train images are missing" in message
    assert str(folder / "train-images-idx3-ubyte.gz") in message
    assert "http://codh.rois.ac.jp/kmnist/dataset/kmnist/train-images-idx3-ubyte.gz" in message
    assert "FASTCNN_OFFLINE" in message and "kmnist/" in message
    with pytest.raises(DatasetError, match="train images are missing"):
        load_kmnist(data_dir=tmp_path)
    assert load_kmnist("test", data_dir=tmp_path)[0].shape == (10000, 28, 28)


def test_every_shared_file_has_its_published_checksums_registered(data_dir):
    for spec in registry.DATASETS.values():
        sums = dict(line.split()[::-1] for line in
                    (data_dir / spec.folder / "SHA256SUMS").read_text().splitlines())
        for name, file_spec in spec.files.items():
            assert file_spec.sha256 == sums[name], f"{spec.name}/{name}"
            assert file_spec.size == (data_dir / spec.folder / name).stat().st_size


def test_unknown_dataset_or_split_is_an_input_error():
    with pytest.raises(InputError, match="unknown dataset"):
        load("cifar10")
    with pytest.raises(InputError, match="split"):
        load_mnist("validation")


# --- damaged files -------------------------------------------------------------------


@pytest.fixture
def labels_bytes(data_dir):
    """The decompressed MNIST test label file (IDX, 10008 bytes)."""
    return gzip.decompress((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())


def test_truncated_gzip_raises_dataset_error_naming_the_file(data_dir, tmp_path):
    raw = (data_dir / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz.*(gzip|truncated)"):
        read_idx(path)


def test_corrupted_gzip_raises_dataset_error_naming_the_file(data_dir, tmp_path):
    raw = bytearray((data_dir / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw[5000:5400] = bytes(400)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz"):
        read_idx(path)


def test_wrong_magic_number_raises_dataset_error(labels_bytes, tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(b"\x12\x34" + labels_bytes[2:]))
    with pytest.raises(DatasetError, match=r"labels.gz is not an IDX file"):
        read_idx(path)
    path.write_bytes(gzip.compress(labels_bytes))
    with pytest.raises(DatasetError, match="3 were expected"):
        read_idx(path, ndim=3)


@pytest.mark.parametrize("change, problem", [(lambda b: b[:-10], "truncated"),
                                             (lambda b: b + b"\0", "longer than its IDX header")])
def test_idx_data_length_must_match_its_header(labels_bytes, tmp_path, change, problem):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(change(labels_bytes))
    with pytest.raises(DatasetError, match=problem):
        read_idx(path)
    path.write_bytes(labels_bytes)
    assert read_idx(path).shape == (10000,)


def test_damaged_npz_raises_dataset_error(data_dir, tmp_path):
    path = tmp_path / "kmnist-test-labels.npz"
    path.write_bytes((data_dir / "kmnist" / "kmnist-test-labels.npz").read_bytes()[:1000])
    with pytest.raises(DatasetError, match="kmnist-test-labels.npz"):
        read_npz(path)


def test_wrong_checksum_in_data_folder_raises_and_says_what_to_do(data_dir, tmp_path):
    folder = copy_files(data_dir / "mnist", tmp_path / "mnist", TEST_FILES)
    flip_byte(folder / TEST_FILES[1])
    with pytest.raises(DatasetError) as error:
        load_mnist("test", data_dir=tmp_path)
    assert TEST_FILES[1] in str(error.value) and "SHA256" in str(error.value)
    assert "delete it" in str(error.value) and "FASTCNN_DATA" in str(error.value)


def test_truncated_file_in_data_folder_is_reported_by_size(data_dir, tmp_path):
    folder = copy_files(data_dir / "mnist", tmp_path / "mnist", TEST_FILES)
    raw = (folder / TEST_FILES[0]).read_bytes()
    (folder / TEST_FILES[0]).write_bytes(raw[:-100])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz is truncated"):
        load_mnist("test", data_dir=tmp_path)


def test_checksums_are_computed_once_per_process_until_the_file_changes(
        data_dir, tmp_path, monkeypatch):
    folder = copy_files(data_dir / "mnist", tmp_path / "mnist", TEST_FILES)
    hashed = []
    real = checksums.file_digests
    monkeypatch.setattr(checksums, "file_digests", lambda p, a: hashed.append(p) or real(p, a))
    load_mnist("test", data_dir=tmp_path)
    load_mnist("test", data_dir=tmp_path)
    assert len(hashed) == 2  # one per file, first load only
    flip_byte(folder / TEST_FILES[1])
    with pytest.raises(DatasetError, match="SHA256"):
        load_mnist("test", data_dir=tmp_path)


# --- downloads (local HTTP server, no internet) ------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class CutOffHandler(QuietHandler):
    """Announces the whole file, then sends half of it and hangs up."""

    def do_GET(self):
        data = (self.directory_path / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(monkeypatch):
    """serve(folder, handler) -> base URL of a local HTTP server for ``folder``."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("FASTCNN_OFFLINE", raising=False)
    servers = []

    def start(folder, handler=QuietHandler):
        handler = type("Handler", (handler,), {"directory_path": folder})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def use_mirrors(monkeypatch, *mirrors):
    spec = dataclasses.replace(registry.DATASETS["mnist"], mirrors=mirrors)
    monkeypatch.setitem(registry.DATASETS, "mnist", spec)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_fetches_verifies_and_places_missing_files(
        data_dir, tmp_path, serve, monkeypatch, mnist_test_split):
    mirror = copy_files(data_dir / "mnist", tmp_path / "mirror", TEST_FILES)
    use_mirrors(monkeypatch, serve(tmp_path / "empty-mirror-that-404s"), serve(mirror))
    x, y = load_mnist("test", data_dir=tmp_path / "home", progress=False)
    assert np.array_equal(x, mnist_test_split[0]) and np.array_equal(y, mnist_test_split[1])
    assert leftovers(tmp_path / "home" / "mnist") == sorted(TEST_FILES)


def test_download_cut_off_mid_stream_leaves_no_file(data_dir, tmp_path, serve):
    mirror = copy_files(data_dir / "mnist", tmp_path / "mirror", TEST_FILES[:1])
    url = serve(mirror, CutOffHandler) + TEST_FILES[0]
    spec = registry.DATASETS["mnist"].files[TEST_FILES[0]]
    with pytest.raises(DatasetError, match="failed|stopped after"):
        download_file(url, tmp_path / "home" / TEST_FILES[0], spec, progress=False)
    assert leftovers(tmp_path / "home") == []


def test_download_with_wrong_checksum_leaves_no_file(data_dir, tmp_path, serve, monkeypatch):
    mirror = copy_files(data_dir / "mnist", tmp_path / "mirror", TEST_FILES)
    flip_byte(mirror / TEST_FILES[1])
    use_mirrors(monkeypatch, serve(mirror))
    with pytest.raises(DatasetError, match=f"{TEST_FILES[1]}.*SHA256"):
        load_mnist("test", data_dir=tmp_path / "home", progress=False)
    assert leftovers(tmp_path / "home" / "mnist") == [TEST_FILES[0]]


def test_offline_mode_forbids_downloading_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_OFFLINE", "1")
    with pytest.raises(DatasetError, match="offline mode is on"):
        load_mnist("test", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="offline mode is on"):
        download_file("http://127.0.0.1:9/x.gz", tmp_path / "x.gz")
    monkeypatch.delenv("FASTCNN_OFFLINE")
    with pytest.raises(DatasetError, match="download=False"):
        load_mnist("test", data_dir=tmp_path, download=False)
    assert leftovers(tmp_path) == []


# --- status and verify ---------------------------------------------------------------


def test_status_reports_present_files_and_complete_splits(data_dir, tmp_path):
    by_name = {entry.name: entry for entry in status()}
    for name in ("mnist", "fashion-mnist", "kmnist"):
        assert by_name[name].complete and by_name[name].missing == ()
    kmnist = by_name["kmnist"]
    assert kmnist.splits == {"train": True, "test": True}
    assert kmnist.folder == str(data_dir / "kmnist")
    assert {f.name for f in kmnist.files if f.exists} == set(registry.KMNIST.files)
    assert dataset_info("kmnist").classes[0] == "\u304a"


def test_status_of_a_folder_without_training_images_says_they_are_missing(data_dir, tmp_path):
    copy_files(data_dir / "kmnist", tmp_path / "kmnist",
               ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"])
    kmnist = next(entry for entry in status(data_dir=tmp_path) if entry.name == "kmnist")
    assert not kmnist.complete and kmnist.splits == {"train": False, "test": True}
    assert kmnist.missing == ("train images",)
    present = {f.name for f in kmnist.files if f.exists}
    assert "t10k-images-idx3-ubyte.gz" in present and "train-images-idx3-ubyte.gz" not in present


def test_verify_checks_every_present_file(data_dir, tmp_path):
    assert all(f.verified for f in verify("mnist").files)
    folder = copy_files(data_dir / "mnist", tmp_path / "mnist", TEST_FILES)
    flip_byte(folder / TEST_FILES[1])
    files = {f.name: f for f in verify("mnist", data_dir=tmp_path).files}
    assert files[TEST_FILES[0]].verified is True
    assert files[TEST_FILES[1]].verified is False and "SHA256" in files[TEST_FILES[1]].problem
    assert files["train-images-idx3-ubyte.gz"].exists is False
    assert status("mnist", data_dir=tmp_path).splits == {"train": False, "test": True}


# --- Kaggle CSV ----------------------------------------------------------------------


def write_csv(path, rows, labels=True):
    header = (["label"] if labels else []) + [f"pixel{i}" for i in range(784)]
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def test_csv_with_and_without_labels_loads(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 784))
    x, y = load_csv(write_csv(tmp_path / "train.csv", np.c_[[7, 0, 9], pixels]))
    assert x.shape == (3, 28, 28) and x.dtype == np.uint8 and y.tolist() == [7, 0, 9]
    assert np.array_equal(x.reshape(3, -1), pixels)
    x_test, y_test = load_csv(write_csv(tmp_path / "test.csv", pixels, labels=False))
    assert y_test is None and np.array_equal(x_test, x)


@pytest.mark.parametrize("bad_row, problem", [
    ([1] + [0] * 783, "line 3 has 784 columns"),
    ([1] + [0] * 5 + [256] + [0] * 778, "line 3, column pixel5: 256 is outside 0..255"),
    ([1] + ["x"] + [0] * 783, "line 3, column pixel0: 'x' is not an integer"),
    ([10] + [0] * 784, "line 3, column label: 10 is outside 0..9"),
])
def test_csv_bad_rows_are_reported_with_line_numbers(tmp_path, bad_row, problem):
    path = write_csv(tmp_path / "train.csv", [[1] + [0] * 784, bad_row])
    with pytest.raises(DatasetError, match=problem):
        load_csv(path)


def test_csv_without_header_empty_or_missing_fails_clearly(tmp_path):
    headerless = tmp_path / "noheader.csv"
    headerless.write_text(",".join(["1"] * 785) + "\n")
    with pytest.raises(DatasetError, match="not a header row"):
        load_csv(headerless)
    with pytest.raises(DatasetError, match="no data rows"):
        load_csv(write_csv(tmp_path / "header-only.csv", []))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_csv(tmp_path / "empty.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        load_csv(tmp_path / "missing.csv")


# --- helpers -------------------------------------------------------------------------


def test_scale_to_nchw_and_one_hot():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    scaled = scale(x)
    assert scaled.dtype == np.float32 and scaled.max() == 1.0 and scaled[0, 1, 0] == pytest.approx(0.2)
    assert to_nchw(scaled).shape == (1, 1, 2, 2) and to_nchw(x[0]).shape == (1, 1, 2, 2)
    assert to_nchw(to_nchw(x)).shape == (1, 1, 2, 2)
    with pytest.raises(InputError):
        scale(scaled)
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(InputError):
        one_hot(np.array([3]), 3)


def test_train_val_split_is_seeded_disjoint_and_complete():
    x = np.arange(100)
    y = np.repeat(np.arange(4), 25)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, val_size=0.2, seed=1)
    (x_tr2, _), (x_val2, _) = train_val_split(x, y, val_size=0.2, seed=1)
    assert np.array_equal(x_val, x_val2) and np.array_equal(x_tr, x_tr2)
    assert len(x_val) == 20 and sorted(np.r_[x_tr, x_val]) == list(range(100))
    assert np.array_equal(y_val, y[x_val])
    _, (x_val3, _) = train_val_split(x, y, val_size=0.2, seed=2)
    assert not np.array_equal(x_val, x_val3)
    _, (_, y_strat) = train_val_split(x, y, val_size=12, seed=0, stratify=True)
    assert np.bincount(y_strat).tolist() == [3, 3, 3, 3]
    with pytest.raises(InputError):
        train_val_split(x, y, val_size=1.5)


def test_kfold_folds_partition_the_indices_and_are_seeded():
    folds = list(kfold(23, k=5, seed=3))
    assert len(folds) == 5
    validation = np.concatenate([val for _, val in folds])
    assert sorted(validation) == list(range(23))
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 23
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold(23, k=5, seed=3)))
    assert [v.tolist() for _, v in kfold(4, k=2, shuffle=False)] == [[0, 1], [2, 3]]


def test_batches_cover_every_sample_and_are_seeded():
    x, y = np.arange(10), np.arange(10) * 10
    first = [xb.tolist() for xb, _ in batches(x, y, 4, seed=5)]
    assert first == [xb.tolist() for xb, _ in batches(x, y, 4, seed=5)]
    assert [len(b) for b in first] == [4, 4, 2] and sorted(sum(first, [])) == list(range(10))
    assert all(np.array_equal(yb, xb * 10) for xb, yb in batches(x, y, 4, seed=5))
    assert [len(b) for b in batches(x, batch_size=4, shuffle=False, drop_last=True)] == [4, 4]
    assert next(batches(x, batch_size=3, shuffle=False)).tolist() == [0, 1, 2]


# --- single images -------------------------------------------------------------------


def draw_digit(path, ink=0, paper=255, mode="L"):
    """A '7'-like stroke, dark on light by default, far from the center of a 120x90 image."""
    image = Image.new(mode, (90, 120), paper)
    draw = ImageDraw.Draw(image)
    draw.line([(10, 10), (50, 10), (25, 70)], fill=ink, width=6)
    image.save(path)
    return path


def center_of_mass(image):
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def test_load_image_inverts_dark_on_light_crops_resizes_and_centers(tmp_path):
    x = load_image(draw_digit(tmp_path / "seven.png"))
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    image = x[0, 0]
    assert image[0].max() == image[-1].max() == image[:, 0].max() == image[:, -1].max() == 0
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
    row, col = center_of_mass(image)
    assert abs(row - 13.5) <= 0.6 and abs(col - 13.5) <= 0.6


def test_load_image_keeps_light_on_dark_and_handles_transparency(tmp_path):
    dark_on_light = load_image(draw_digit(tmp_path / "a.png"), as_uint8=True)
    light_on_dark = load_image(draw_digit(tmp_path / "b.png", ink=255, paper=0), as_uint8=True)
    transparent = load_image(draw_digit(tmp_path / "c.png", (0, 0, 0, 255), (0, 0, 0, 0), "RGBA"),
                             as_uint8=True)
    assert dark_on_light.shape == (28, 28) and dark_on_light.dtype == np.uint8
    assert np.array_equal(dark_on_light, light_on_dark)
    assert np.abs(transparent.astype(int) - dark_on_light).max() <= 2
    assert np.array_equal(prepare_digit(np.asarray(Image.open(tmp_path / "a.png"))), dark_on_light)


def test_load_image_missing_unreadable_or_blank_fails_clearly(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DatasetError, match="cannot read image file"):
        load_image(tmp_path / "text.png")
    Image.new("L", (28, 28), 255).save(tmp_path / "blank.png")
    with pytest.raises(InputError, match="blank"):
        load_image(tmp_path / "blank.png")

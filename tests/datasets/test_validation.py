"""Damaged or edited files are refused with one DataFormatError naming file, trajectory and field."""

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshsim.datasets import TrajectoryFile, TrajectoryWriter, validate_file
from meshsim.errors import DataFormatError


@pytest.fixture
def store(tmp_path, make_traj):
    path = tmp_path / "store.h5"
    with TrajectoryWriter(path) as w:
        w.write("00000", make_traj(0))
        w.write("00001", make_traj(1))
    return path


def _replace(group, name, data):
    del group[name]
    group.create_dataset(name, data=data)


EDITS = {
    "wrong shape": (lambda g: _replace(g, "world_pos", np.zeros((6, 13, 2), np.float32)), "'world_pos'.*shape"),
    "NaN position": (lambda g: g["world_pos"].__setitem__((2, 5, 0), np.nan), r"'world_pos'.*NaN.*\[2, 5, 0\]"),
    "inf field": (lambda g: g["fields/stress"].__setitem__((1, 3), np.inf), "'fields/stress'.*non-finite"),
    "cell index": (lambda g: g["cells"].__setitem__((4, 1), 12), r"'cells' row 4.*outside the 12 nodes"),
    "negative cell": (lambda g: g["cells"].__setitem__((0, 0), -1), "'cells' row 0"),
    "node type": (lambda g: g["node_type"].__setitem__(7, 9), "'node_type' of node 7 is 9"),
    "dt zero": (lambda g: g.attrs.__setitem__("dt", 0.0), "'dt'.*> 0"),
    "dtype": (lambda g: _replace(g, "mesh_pos", np.zeros((12, 2), np.int64)), "'mesh_pos' has dtype int64"),
    "missing": (lambda g: g.__delitem__("node_type"), "'node_type' is missing"),
    "global shape": (lambda g: _replace(g, "globals/kinetic_energy", np.zeros(5)), "'globals/kinetic_energy'"),
    "cell type attr": (lambda g: g.attrs.__setitem__("cell_type", "tetra"), "'cell_type'"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_trajectory_is_refused_naming_trajectory_and_field(store, edit):
    change, pattern = EDITS[edit]
    with h5py.File(store, "r+") as raw:
        change(raw["trajectories/00001"])
    with TrajectoryFile(store) as f:
        f.read("00000")  # the untouched trajectory still reads
        with pytest.raises(DataFormatError, match=f"{store.name}: trajectory '00001'.*{pattern}"):
            f.read("00001")
    with pytest.raises(DataFormatError) as err:
        validate_file(store)
    assert "\n" not in str(err.value) and "00001" in str(err.value)


@pytest.mark.parametrize(
    "attr,value,pattern",
    [("format_version", 2, "'format_version' is 2"), ("format", "other", "'format' is 'other'"),
     ("format_version", "1", "'format_version'")],
)  # fmt: skip
def test_wrong_root_attributes_are_refused_on_open(store, attr, value, pattern):
    with h5py.File(store, "r+") as raw:
        raw.attrs[attr] = value
    with pytest.raises(DataFormatError, match=pattern):
        TrajectoryFile(store)


def test_truncated_and_foreign_files_are_refused(store, tmp_path):
    data = store.read_bytes()
    for size in (0, 100, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{size}.h5"
        cut.write_bytes(data[:size])
        with pytest.raises(DataFormatError, match=f"cut{size}.h5"):
            validate_file(cut)
    with h5py.File(tmp_path / "foreign.h5", "w") as raw:
        raw["x"] = 1
    with pytest.raises(DataFormatError, match="not a meshsim trajectory file"):
        TrajectoryFile(tmp_path / "foreign.h5")
    with pytest.raises(DataFormatError, match="no such file"):
        TrajectoryFile(tmp_path / "absent.h5")
    with TrajectoryFile(store) as f, pytest.raises(DataFormatError, match="no trajectory 'zz'.*00000, 00001"):
        f.read("zz")
    with TrajectoryFile(store) as f, pytest.raises(DataFormatError, match="frame 6 out of range"):
        f.frame("00000", 6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=0, max_size=4096), keep_header=st.booleans())
def test_fuzz_random_bytes_always_a_data_format_error(tmp_path, store, blob, keep_header):
    path = tmp_path / "fuzz.h5"
    head = store.read_bytes()[:512] if keep_header else b""  # a real HDF5 signature with garbage after it
    path.write_bytes(head + blob)
    with pytest.raises(DataFormatError):
        validate_file(path)


_arrays = st.tuples(
    st.lists(st.integers(0, 5), min_size=0, max_size=4),
    st.sampled_from(["f4", "f8", "i4", "i8", "u1", "S3", "?"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    specs=st.fixed_dictionaries({name: _arrays for name in ("cells", "mesh_pos", "node_type", "world_pos")}),
    fields=st.dictionaries(st.sampled_from(["stress", "v"]), _arrays, max_size=2),
    # strings without NUL: h5py itself refuses to store those, before meshsim sees the file
    dt=st.one_of(st.floats(allow_nan=True), st.text(st.characters(exclude_characters="\x00"), max_size=3),
                 st.integers(-2, 2)),
    fill=st.sampled_from([0, 1, 7, np.nan]),
)
def test_fuzz_random_shapes_and_dtypes_never_escape_validation(tmp_path, specs, fields, dt, fill):
    path = tmp_path / "shapes.h5"
    with h5py.File(path, "w") as raw:
        raw.attrs.update({"format": "meshsim.trajectories", "format_version": 1})
        g = raw.create_group("trajectories/t")
        g.attrs["dt"] = dt
        g.attrs["cell_type"] = "triangle"
        for prefix, spec in [("", specs), ("fields/", fields)]:
            for name, (shape, dtype) in spec.items():
                data = np.full(shape, fill if dtype[0] == "f" else 1).astype(dtype)
                g.create_dataset(prefix + name, data=data)
    try:
        with TrajectoryFile(path) as f:
            traj = f.read("t")
    except DataFormatError as err:
        assert "\n" not in str(err)
    else:  # whatever passed is a usable trajectory
        assert traj.world_pos.shape[1] == traj.mesh_pos.shape[0] and np.isfinite(traj.world_pos).all()
        assert traj.cells.max() < traj.num_nodes and traj.dt > 0

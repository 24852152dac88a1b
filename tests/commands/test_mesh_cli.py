"""`meshsim mesh info` end to end."""

import json

import numpy as np
from procs import meshsim_cmd, run

from meshsim import cli
from meshsim.mesh import Mesh, box, write_mesh


def test_mesh_info_text_and_json(tmp_path, capsys):
    write_mesh(box((2.0, 1.0, 0.5), (4, 2, 2)), tmp_path / "plate.msh")
    assert cli.main(["mesh", "info", str(tmp_path / "plate.msh")]) == 0
    text = capsys.readouterr().out
    assert "nodes       45" in text and "96 tetra" in text and "[2, 1, 0.5]" in text and "verdict     ok" in text
    assert cli.main(["mesh", "info", "--json", str(tmp_path / "plate.msh")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cells"] == 96 and info["quality"]["total_measure"] == 1.0 and info["defects"]["inverted"] == 0


def test_mesh_info_reports_defects(tmp_path, capsys):
    points = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [5, 5.0]])
    write_mesh(Mesh(points, np.array([[0, 1, 2], [1, 2, 3]]), "triangle"), tmp_path / "bad.vtu")
    assert cli.main(["mesh", "info", str(tmp_path / "bad.vtu")]) == 0
    text = capsys.readouterr().out
    assert "inverted            1 (first: 1)" in text and "unreferenced nodes  1 (first: 4)" in text
    assert "problems: inverted, unreferenced_nodes" in text


def test_mesh_info_lists_every_cell_block_of_the_file(tmp_path, capsys):
    import meshio

    points = np.array([[0, 0], [1, 0], [0, 1], [1, 1.0]])
    blocks = [
        ("line", np.array([[0, 1], [1, 3]])),
        ("triangle", np.array([[0, 1, 2]])),
        ("quad", np.array([[0, 1, 3, 2]])),
    ]
    meshio.write(tmp_path / "mixed.vtu", meshio.Mesh(points, blocks))
    assert cli.main(["mesh", "info", "--json", str(tmp_path / "mixed.vtu")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file_cells"] == {"line": 2, "triangle": 1, "quad": 1}
    assert info["cells"] == 3 and info["cell_type"] == "triangle"  # quad split in two, lines dropped


def test_unreadable_mesh_exits_2_with_one_line(tmp_path):
    (tmp_path / "junk.msh").write_text("$MeshFormat\nbroken")
    out = run(meshsim_cmd("mesh", "info", tmp_path / "junk.msh"), timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshsim: error: ") and "junk.msh" in lines[0]

"""Conformance tests over the input-format registry (sweeper.io.formats.FORMATS).

Every registered format must: be picked by ``guess_format`` for its own samples (and only by
itself), read each sample to the same Network, survive a round trip through sweeper's network
file, and name the file in its errors. A new format adds an entry to SAMPLES and BROKEN.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sweeper.errors import ModelError
from sweeper.io import load_network, save_network
from sweeper.io.formats import FORMATS, guess_format
from sweeper.io.netfile import read_network
from sweeper.model import (Connection, ConstantRate, Dist, ExternalPopulation, InternalPopulation, Network,
                           Simulation)

TUTORIAL = Path(__file__).parent / "data" / "fixtures" / "popnet_tutorial"


def _cell(name, tau_m):
    return InternalPopulation(name, tau_m=Dist.delta(tau_m), v_min=-0.05, v_max=0.02, dv=0.0001,
                              update_method="gmres", approx_order=None)


# bmtk's PopNet tutorial network (tests/data/fixtures/README.md), written out by hand
REFERENCE = Network(
    (_cell("excitatory", 0.0429), _cell("inhibitory", 0.0299), ExternalPopulation("LGN_tON", ConstantRate(15.0))),
    (Connection("inhibitory", "excitatory", 10.0, Dist.delta(-0.002), Dist.delta(0.002)),
     Connection("excitatory", "inhibitory", 20.0, Dist.delta(0.005), Dist.delta(0.002)),
     Connection("LGN_tON", "excitatory", 10.0, Dist.delta(0.0025), Dist.delta(0.002))),
    Simulation(0.0, 1.5, 0.001), "reference")


def popnet_samples(tmp: Path) -> list[Path]:
    d = Path(shutil.copytree(TUTORIAL, tmp / "tutorial"))
    return [d / "config.json", d]


def netfile_samples(tmp: Path) -> list[Path]:
    return [save_network(REFERENCE, tmp / "net.json"), save_network(REFERENCE, tmp / "net.yaml")]


def popnet_broken(tmp: Path) -> tuple[Path, Path]:
    config = popnet_samples(tmp)[0]
    bad = config.parent / "components" / "population_models" / "exc_model.json"
    bad.write_text('{"tau_m": [1')
    return config, bad


def netfile_broken(tmp: Path) -> tuple[Path, Path]:
    path = save_network(replace(REFERENCE, populations=(_cell("excitatory", -0.01),) + REFERENCE.populations[1:]),
                        tmp / "bad.yaml")
    return path, path


SAMPLES = {"popnet": popnet_samples, "network-file": netfile_samples}
BROKEN = {"popnet": popnet_broken, "network-file": netfile_broken}
NAMES = [f.name for f in FORMATS]


def same(net: Network, ref: Network = REFERENCE) -> bool:
    return replace(net, name=ref.name) == ref


def test_every_format_has_conformance_samples():
    assert set(SAMPLES) == set(NAMES) == set(BROKEN)
    assert len(set(NAMES)) == len(NAMES)
    for fmt in FORMATS:
        assert fmt.description and callable(fmt.guess_can_open) and callable(fmt.read)


@pytest.mark.parametrize("name", NAMES)
def test_guess_picks_the_format_for_its_samples(name, tmp_path):
    fmt = next(f for f in FORMATS if f.name == name)
    for path in SAMPLES[name](tmp_path):
        assert guess_format(path) is fmt, path
        assert fmt.guess_can_open(path)


@pytest.mark.parametrize("name", NAMES)
def test_every_sample_reads_to_the_same_network(name, tmp_path):
    fmt = next(f for f in FORMATS if f.name == name)
    for path in SAMPLES[name](tmp_path):
        assert same(fmt.read(path)), path
        assert same(load_network(path)), path


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_a_network_file(name, tmp_path):
    fmt = next(f for f in FORMATS if f.name == name)
    for i, path in enumerate(SAMPLES[name](tmp_path)):
        net = fmt.read(path)
        for suffix in (".json", ".yaml"):
            copy = read_network(save_network(net, tmp_path / f"copy{i}{suffix}"))
            assert same(copy, net)


@pytest.mark.parametrize("name", NAMES)
def test_errors_name_the_file(name, tmp_path):
    fmt = next(f for f in FORMATS if f.name == name)
    path, culprit = BROKEN[name](tmp_path)
    assert guess_format(path) is fmt
    for read in (fmt.read, load_network):
        with pytest.raises(ModelError) as info:
            read(path)
        assert str(info.value).startswith(f"{culprit}: "), str(info.value)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe", b"[1, 2", b"{\"run\": ", b"- a\n- b\n"])
def test_guesses_never_raise(content, tmp_path):
    for suffix in (".json", ".yaml", ""):
        path = tmp_path / f"odd{suffix}"
        path.write_bytes(content)
        for fmt in FORMATS:
            assert fmt.guess_can_open(path) in (True, False)
        with pytest.raises(ModelError, match=str(path)):
            load_network(path)


def test_one_sniffing_rule(tmp_path):
    popnet = tmp_path / "sim.json"
    popnet.write_text(json.dumps({"run": {"tstop": 10, "dt": 0.001}}))
    assert guess_format(popnet).name == "popnet"
    netfile = tmp_path / "net.json"
    netfile.write_text(json.dumps({"populations": [], "run": {}}))
    assert guess_format(netfile).name == "network-file"
    unnamed = tmp_path / "other.json"
    unnamed.write_text(json.dumps({"name": "x"}))        # neither: read (and refused) as a network file
    assert guess_format(unnamed).name == "network-file"
    assert guess_format(tmp_path / "missing.json").name == "network-file"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert guess_format(empty_dir) is None
    with pytest.raises(ModelError, match="is a directory without a config.json"):
        load_network(empty_dir)


@pytest.mark.parametrize("name", NAMES)
def test_input_files_cover_the_sample_and_the_digest_follows_them(name, tmp_path):
    from sweeper.io.formats import input_digest

    fmt = next(f for f in FORMATS if f.name == name)
    for path in SAMPLES[name](tmp_path):
        files = fmt.input_files(path)
        assert files and all(f.is_file() for f in files)
        config = path / "config.json" if path.is_dir() else path
        assert config.resolve() in {f.resolve() for f in files}
        before = input_digest(path)
        assert input_digest(path) == before
        original = config.read_bytes()
        config.write_bytes(original + b"\n")
        assert input_digest(path) != before
        config.write_bytes(original)

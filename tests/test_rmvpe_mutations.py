"""Plausible RMVPE porting mistakes, each run through the golden diff: it must name the stage where the
mistake happens, and the f0 metrics must catch what SNR alone would misreport."""

from __future__ import annotations

import numpy as np
import pytest

from rvc_ios_tools.core import blas  # noqa: F401  (OpenBLAS before mlx)
from rvc_ios_tools.rmvpe import reference as rmvpe_inference

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from catalogue_log import log_report  # noqa: E402
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.rmvpe import model as rmvpe_model
from rvc_ios_tools.rmvpe.convert import convert_rmvpe
from rvc_ios_tools.rmvpe.demo import demo_audio, random_rmvpe_state_dict
from rvc_ios_tools.rmvpe.reference import build_rmvpe, rmvpe_golden_tensors, write_rmvpe_golden
from rvc_ios_tools.core.pitch_track import f0_agreement

# 0.5 s: 51 frames, so reflect padding adds 13.
AUDIO_SAMPLES = 8000


@pytest.fixture(scope="module")
def weights():
    return convert_rmvpe(random_rmvpe_state_dict(seed=0))


@pytest.fixture(scope="module")
def audio():
    return demo_audio(AUDIO_SAMPLES, seed=11)


@pytest.fixture(scope="module")
def golden(weights, audio, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rmvpe-golden")
    write_rmvpe_golden(folder, build_rmvpe(weights), audio, model_name="rmvpe-demo", manifest_sha256="0" * 64, seed=0)
    return read_golden(folder)


def diff(golden, candidate: dict[str, np.ndarray]):
    return log_report(compare_golden(golden, candidate, {}))


def test_the_reference_itself_passes_every_stage(golden, weights, audio):
    report = diff(golden, rmvpe_golden_tensors(build_rmvpe(weights), audio))
    assert report.passed and report.first_divergent_stage is None
    assert f0_agreement(golden.tensors["f0"], golden.tensors["f0"], golden.tensors["salience"]).passed


def test_batch_norm_statistics_not_loaded_diverge_at_the_encoder(golden, weights, audio):
    model = rmvpe_model.E2E()
    model.load_weights([(k, mx.array(v)) for k, v in weights.items() if not k.endswith(("running_mean", "running_var"))],
                       strict=False)
    model.eval()
    assert diff(golden, rmvpe_golden_tensors(model, audio)).first_divergent_stage == "encoder"


def test_batch_norm_in_training_mode_diverges_at_the_encoder(golden, weights, audio):
    model = build_rmvpe(weights).train()
    assert diff(golden, rmvpe_golden_tensors(model, audio)).first_divergent_stage == "encoder"


def test_batch_norm_on_the_shortcut_diverges_at_the_encoder(golden, weights, audio, monkeypatch):
    """A port that builds the 1x1 shortcut as conv + BatchNorm (as torchvision ResNets do) and fills that
    BatchNorm from the block's own `bn2`."""

    def call_with_shortcut_batch_norm(self, x):
        y = nn.relu(self.bn1(self.conv1(x)))
        y = nn.relu(self.bn2(self.conv2(y)))
        return y + (self.bn2(self.shortcut(x)) if self.has_shortcut else x)

    monkeypatch.setattr(rmvpe_model.ConvBlockRes, "__call__", call_with_shortcut_batch_norm)
    assert diff(golden, rmvpe_golden_tensors(build_rmvpe(weights), audio)).first_divergent_stage == "encoder"


def test_constant_frame_padding_in_reflect_mode_diverges_at_padded_mel(golden, weights, audio):
    candidate = rmvpe_golden_tensors(build_rmvpe(weights), audio, pad_mode="constant")
    assert diff(golden, candidate).first_divergent_stage == "padded_mel"


def test_gru_with_b_hn_outside_the_reset_gate_diverges_at_the_gru(golden, weights, audio, monkeypatch):
    """n = tanh(W_in x + b_in + b_hn + r * (W_hn h)) instead of PyTorch's tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def step_with_b_hn_outside(self, input_gates, h):
        hidden = self.hidden_size
        hidden_gates = h @ self.weight_hh.T  # biases added below
        x_r, x_z, x_n = mx.split(input_gates, 3, axis=-1)
        h_r, h_z, h_n = mx.split(hidden_gates, 3, axis=-1)
        b_hr, b_hz, b_hn = self.bias_hh[:hidden], self.bias_hh[hidden : 2 * hidden], self.bias_hh[2 * hidden :]
        r = mx.sigmoid(x_r + h_r + b_hr)
        z = mx.sigmoid(x_z + h_z + b_hz)
        n = mx.tanh(x_n + b_hn + r * h_n)
        return (1 - z) * n + z * h

    # The mistake is made in the frame-by-frame Python path (`step`), so the C++ recurrence is switched off.
    monkeypatch.setenv("RVC_IOS_NATIVE_CONV", "0")
    monkeypatch.setattr(rmvpe_model.GRU, "step", step_with_b_hn_outside)
    assert diff(golden, rmvpe_golden_tensors(build_rmvpe(weights), audio)).first_divergent_stage == "gru"


def test_cents_read_as_midi_cents_diverges_at_f0_by_hundreds_of_cents(golden, weights, audio, monkeypatch):
    """f0 = 440 * 2^((cents - 6900) / 1200), the MIDI-cents convention, instead of RMVPE's 10 * 2^(cents / 1200)."""

    def midi_cents_to_f0(cents):
        cents = np.asarray(cents, dtype=np.float64)
        return np.where(cents == 0, 0.0, 440.0 * np.power(2.0, (cents - 6900.0) / 1200.0))

    monkeypatch.setattr(rmvpe_inference, "cents_to_f0", midi_cents_to_f0)
    candidate = rmvpe_golden_tensors(build_rmvpe(weights), audio)
    assert diff(golden, candidate).first_divergent_stage == "f0"
    agreement = f0_agreement(golden.tensors["f0"], candidate["f0"], golden.tensors["salience"])
    assert not agreement.passed
    # 10 Hz vs 440 Hz * 2^(-6900/1200) = 8.18 Hz as the zero-cents reference: 347.4 cents flat everywhere.
    assert agreement.max_cents_error == pytest.approx(1200 * np.log2(10 / (440 * 2 ** (-6900 / 1200))), abs=1e-3)
    assert agreement.voicing_agreement == 1.0


def test_voicing_flips_are_counted_except_on_ambiguous_frames(golden):
    f0, salience = golden.tensors["f0"], golden.tensors["salience"]
    voiced = np.flatnonzero(f0[0] > 0)
    flipped = f0.copy()
    flipped[0, voiced[0]] = 0.0
    agreement = f0_agreement(f0, flipped, salience)
    assert agreement.voicing_mismatches == 1 and not agreement.passed
    assert agreement.voicing_agreement == pytest.approx(1 - 1 / f0.size)

    ambiguous_salience = salience.copy()
    ambiguous_salience[0, voiced[0]] = 0.0
    ambiguous_salience[0, voiced[0], 100] = rmvpe_inference.THRESHOLD + 5e-5
    assert f0_agreement(f0, flipped, ambiguous_salience).passed

"""The MLX RMVPE reference against upstream PyTorch (`rvc.lib.rmvpe`), stage by stage.

Upstream runs from a demo rmvpe.pt (every weight and BatchNorm statistic random, so every layer matters)
through its own loader, `RMVPE(path)`; ours runs from the safetensors `export_rmvpe` wrote for that file.
Every test that needs the models runs on rmvpe.pt's full network and on the tiny demo preset the committed
fixtures use (upstream built from its own classes at that size, `rmvpe.upstream.upstream_rmvpe_e2e`).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
upstream_rmvpe = pytest.importorskip("rvc.lib.rmvpe", reason="upstream rvc (with librosa) is a test dependency")
librosa = pytest.importorskip("librosa")

from rvc_ios_tools.rmvpe import mel as mel_spec  # noqa: E402
from rvc_ios_tools.core.diff import snr_db  # noqa: E402
from rvc_ios_tools.rmvpe.export import export_rmvpe  # noqa: E402
from rvc_ios_tools.rmvpe.demo import DEMO_ARCHITECTURES, demo_audio, write_demo_rmvpe  # noqa: E402
from rvc_ios_tools.rmvpe.reference import (
    AudioTooShortError,
    FRAME_MULTIPLE,
    THRESHOLD,
    estimate_f0,
    load_rmvpe,
    log_mel,
    mel_to_salience,
    rmvpe_golden_tensors,
    salience_to_f0,
)
from rvc_ios_tools.rmvpe.stages import RMVPE_MIN_SNR_DB, rmvpe_stage_table
from rvc_ios_tools.core.pitch_track import f0_agreement
from rvc_ios_tools.rmvpe.upstream import load_upstream_rmvpe  # noqa: E402
from rvc_ios_tools.rmvpe.upstream import run_upstream_rmvpe as upstream_stage_tensors  # noqa: E402

HOP = mel_spec.HOP_LENGTH
# (samples, why): frame counts 1 + samples // 160.
HALF_SECOND = 8000  # 51 frames, padded to 64
UNPADDED = (2 * FRAME_MULTIPLE - 1) * HOP  # exactly 64 frames: nothing to pad
THREE_SECONDS = 48000  # 301 frames, padded to 320


# Per preset, a weight seed whose salience straddles the 0.03 voicing threshold on the test audio (seed 1), so
# the voicing check below has voiced and unvoiced frames to compare.
MODEL_SEEDS = {"full": 0, "tiny": 4}


@pytest.fixture(scope="module", params=["full", "tiny"])
def models(request, tmp_path_factory):
    """(upstream RMVPE loaded from a demo rmvpe.pt, the MLX reference loaded from its export)."""
    folder = tmp_path_factory.mktemp(f"rmvpe-{request.param}")
    checkpoint = write_demo_rmvpe(folder / "rmvpe.pt", seed=MODEL_SEEDS[request.param], preset=request.param)
    upstream = load_upstream_rmvpe(checkpoint, DEMO_ARCHITECTURES[request.param])
    weights_path, _ = export_rmvpe(checkpoint, folder / "export")
    return upstream, load_rmvpe(weights_path)


def assert_every_stage_matches(model, ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    table = rmvpe_stage_table(model)
    for stage in table.stages:
        if stage.name == "f0":
            continue  # judged in cents and voicing below, not by SNR
        for name in stage.outputs:
            assert ours[name].shape == theirs[name].shape, name
            snr = snr_db(theirs[name], ours[name])
            assert snr >= RMVPE_MIN_SNR_DB, f"{name}: {snr:.1f} dB"
    agreement = f0_agreement(theirs["f0"], ours["f0"], theirs["salience"])
    assert agreement.passed, agreement.summary()
    # The demo weights must exercise both decisions, or the voicing check proves nothing.
    assert 0 < agreement.voiced_frames < agreement.frames


def test_mel_filterbank_is_librosas_htk_slaney_filterbank():
    expected = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)
    np.testing.assert_array_equal(mel_spec.mel_filterbank(), expected)


def test_hann_window_is_torchs_periodic_window():
    np.testing.assert_allclose(mel_spec.periodic_hann_window(1024), torch.hann_window(1024).numpy(), atol=2e-7)


@pytest.mark.parametrize("samples", [HALF_SECOND, UNPADDED, 513])
def test_log_mel_matches_upstream_mel_spectrogram(samples):
    audio = demo_audio(samples, seed=3)
    upstream = upstream_rmvpe.MelSpectrogram(False, 128, 16000, 1024, 160, None, 30, 8000)
    with torch.no_grad():
        expected = upstream(torch.from_numpy(audio)[None], center=True).numpy()
    ours = np.array(log_mel(audio))
    assert ours.shape == expected.shape == (1, 128, 1 + samples // HOP)
    assert snr_db(expected, ours) >= RMVPE_MIN_SNR_DB


@pytest.mark.parametrize("samples", [HALF_SECOND, UNPADDED], ids=["0.5s-padded", "64-frames-unpadded"])
def test_every_stage_matches_upstream_with_reflect_padding(models, samples):
    upstream, ours = models
    audio = demo_audio(samples, seed=1)
    assert_every_stage_matches(ours, rmvpe_golden_tensors(ours, audio), upstream_stage_tensors(upstream, audio, "reflect"))


@pytest.mark.slow
def test_every_stage_matches_upstream_on_three_seconds(models):
    upstream, ours = models
    audio = demo_audio(THREE_SECONDS, seed=2)
    assert_every_stage_matches(ours, rmvpe_golden_tensors(ours, audio), upstream_stage_tensors(upstream, audio, "reflect"))


def test_upstream_stage_capture_is_e2e_forward(models):
    """The stage-by-stage upstream run above must be what `E2E.forward` computes, not our reading of it."""
    upstream, _ = models
    audio = demo_audio(HALF_SECOND, seed=1)
    stages = upstream_stage_tensors(upstream, audio, "reflect")
    with torch.no_grad():
        direct = upstream.model(torch.from_numpy(stages["padded_mel"]))[:, : stages["mel"].shape[-1]].numpy()
    np.testing.assert_array_equal(stages["salience"], direct)


@pytest.mark.parametrize("samples", [HALF_SECOND, UNPADDED], ids=["0.5s-padded", "64-frames-unpadded"])
def test_constant_padding_matches_rvc_mel2hidden_and_infer_from_audio(models, samples):
    upstream, ours = models
    audio = demo_audio(samples, seed=4)
    with torch.no_grad():
        expected_salience = upstream.mel2hidden(upstream.mel_extractor(torch.from_numpy(audio)[None], center=True))
    expected_salience = expected_salience.numpy()
    salience = np.array(mel_to_salience(ours, log_mel(audio), pad_mode="constant"))
    assert snr_db(expected_salience, salience) >= RMVPE_MIN_SNR_DB

    expected_f0 = upstream.infer_from_audio(audio, thred=THRESHOLD)
    f0 = estimate_f0(ours, audio, pad_mode="constant")
    assert f0.shape == expected_f0.shape == (1 + samples // HOP,)
    agreement = f0_agreement(expected_f0, f0, expected_salience[0])
    assert agreement.passed, agreement.summary()


def test_reflect_and_constant_padding_differ_only_when_frames_are_padded(models):
    _, ours = models
    for samples, should_differ in ((HALF_SECOND, True), (UNPADDED, False)):
        mel = log_mel(demo_audio(samples, seed=5))
        reflect = np.array(mel_to_salience(ours, mel, "reflect"))
        constant = np.array(mel_to_salience(ours, mel, "constant"))
        assert (not np.array_equal(reflect, constant)) == should_differ


def test_decode_is_bit_identical_to_upstream_decode_on_the_same_salience(models):
    upstream, _ = models
    rng = np.random.default_rng(7)
    # Peaks at the first and last bins exercise the zero padding of the 9-bin window.
    salience = rng.uniform(0, 0.05, size=(200, 360)).astype(np.float32)
    salience[np.arange(200), rng.integers(0, 360, 200)] += rng.uniform(0, 0.5, 200).astype(np.float32)
    salience[0, 0] = salience[1, 359] = 0.9
    np.testing.assert_array_equal(salience_to_f0(salience), upstream.decode(salience, thred=THRESHOLD))


def test_reflect_padding_refuses_audio_too_short_to_reflect(models):
    _, ours = models
    with pytest.raises(AudioTooShortError, match="at least 2560 samples"):
        estimate_f0(ours, demo_audio(2559, seed=0))
    assert estimate_f0(ours, demo_audio(2560, seed=0)).shape == (17,)


# --- the U-Net's convolutions on mel-major activations, both paths, against torch ---


@pytest.mark.parametrize("native", [True, False], ids=["native-kernel", "mlx-conv2d"])
@pytest.mark.parametrize("in_channels, out_channels, bias", [(1, 16, False), (16, 16, False), (24, 3, True)])
def test_conv2d_3x3_on_mel_major_activations_matches_torch(monkeypatch, native, in_channels, out_channels, bias):
    import mlx.core as mx

    from rvc_ios_tools.core import native_conv
    from rvc_ios_tools.rmvpe import model as rmvpe_model

    if native and not native_conv.available():
        pytest.fail(native_conv.unavailable_reason())
    monkeypatch.setenv("RVC_IOS_NATIVE_CONV", "1" if native else "0")
    rng = np.random.default_rng(in_channels)
    image = rng.standard_normal((2, in_channels, 37, 10)).astype(np.float32)  # NCHW: (B, C, T, mel)
    weight = rng.standard_normal((out_channels, in_channels, 3, 3)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    expected = torch.nn.functional.conv2d(torch.from_numpy(image), torch.from_numpy(weight),
                                          torch.from_numpy(b) if bias else None, padding=1).numpy()
    conv = rmvpe_model.Conv2d3x3(in_channels, out_channels, bias=bias)
    conv.weight = mx.array(weight.transpose(0, 2, 3, 1))  # (O, kT, kMel, I), as the converter writes it
    if bias:
        conv.bias = mx.array(b)
    out = conv(mx.array(image.transpose(0, 3, 2, 1)))  # mel-major (B, mel, T, C)
    got = np.array(out).transpose(0, 3, 2, 1)
    assert got.shape == expected.shape
    assert snr_db(expected, got) > 120
    # A new weight array is picked up (the per-tap slices are remade, not reused).
    conv.weight = mx.array(-weight.transpose(0, 2, 3, 1))
    negated = torch.nn.functional.conv2d(torch.from_numpy(image), torch.from_numpy(-weight),
                                         torch.from_numpy(b) if bias else None, padding=1).numpy()
    assert snr_db(negated, np.array(conv(mx.array(image.transpose(0, 3, 2, 1)))).transpose(0, 3, 2, 1)) > 120


@pytest.mark.parametrize("stride, output_padding", [((2, 2), (1, 1)), ((1, 2), (0, 1)), ((2, 1), (1, 0))])
def test_subpixel_transposed_conv_on_mel_major_activations_matches_torch(stride, output_padding):
    import mlx.core as mx

    from rvc_ios_tools.rmvpe import model as rmvpe_model

    rng = np.random.default_rng(5)
    image = rng.standard_normal((2, 6, 9, 5)).astype(np.float32)  # NCHW: (B, C, T, mel)
    weight = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)  # (in, out, kT, kMel)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(image), torch.from_numpy(weight), stride=stride, padding=1, output_padding=output_padding
    ).numpy()
    conv = rmvpe_model.SubpixelConvTranspose2d(6, 4, 3, stride, 1, output_padding)
    conv.weight = mx.array(weight.transpose(1, 2, 3, 0))  # (out, kT, kMel, in), as the converter writes it
    got = np.array(conv(mx.array(image.transpose(0, 3, 2, 1)))).transpose(0, 3, 2, 1)
    assert got.shape == expected.shape
    assert snr_db(expected, got) > 120


@pytest.mark.parametrize("native", [True, False], ids=["native-recurrence", "mlx-steps"])
def test_bigru_matches_torch_bidirectional_gru(monkeypatch, native):
    import mlx.core as mx

    from rvc_ios_tools.core import native_conv
    from rvc_ios_tools.rmvpe import model as rmvpe_model

    if native and not native_conv.available():
        pytest.fail(native_conv.unavailable_reason())
    monkeypatch.setenv("RVC_IOS_NATIVE_CONV", "1" if native else "0")
    torch.manual_seed(0)
    reference = torch.nn.GRU(7, 5, num_layers=1, batch_first=True, bidirectional=True)
    for parameter in reference.parameters():  # biases as large as weights, so b_hn's place matters
        torch.nn.init.uniform_(parameter, -1.0, 1.0)
    x = torch.randn(2, 17, 7)
    expected = reference(x)[0].detach().numpy()
    ours = rmvpe_model.BiGRU(7, 5)
    for direction, suffix in ((ours.forward, ""), (ours.reverse, "_reverse")):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(direction, name, mx.array(getattr(reference, f"{name}_l0{suffix}").detach().numpy()))
    got = np.array(ours(mx.array(x.numpy())))
    assert got.shape == expected.shape
    assert snr_db(expected, got) > 120


def test_native_gru_recurrence_refuses_mismatched_shapes():
    import mlx.core as mx

    from rvc_ios_tools.core import native_conv

    gates = mx.zeros((1, 4, 15))
    with pytest.raises(ValueError, match="weight_hh must be"):
        native_conv.gru_recurrence(gates, mx.zeros((15, 4)), mx.zeros((15,)))
    with pytest.raises(ValueError, match="bias_hh must be"):
        native_conv.gru_recurrence(gates, mx.zeros((15, 5)), mx.zeros((5,)))
    with pytest.raises(ValueError, match="input_gates must be"):
        native_conv.gru_recurrence(mx.zeros((4, 15)), mx.zeros((15, 5)), mx.zeros((15,)))


def test_native_gru_recurrence_reads_strided_inputs_like_contiguous_ones():
    import mlx.core as mx

    from rvc_ios_tools.core import native_conv

    rng = np.random.default_rng(8)
    gates = rng.standard_normal((2, 6, 12)).astype(np.float32)
    weight = rng.standard_normal((12, 4)).astype(np.float32)
    bias = rng.standard_normal(12).astype(np.float32)
    contiguous = native_conv.gru_recurrence(mx.array(gates), mx.array(weight), mx.array(bias))
    strided = native_conv.gru_recurrence(
        mx.array(np.ascontiguousarray(gates.transpose(1, 0, 2))).transpose(1, 0, 2),  # frames outermost in memory
        mx.array(np.ascontiguousarray(weight.T)).T,
        mx.array(np.repeat(bias, 2))[::2],
    )
    np.testing.assert_array_equal(np.array(strided), np.array(contiguous))

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from aim.pytorch import track_gradients_dists, track_params_dists  # noqa: E402

pytestmark = pytest.mark.adapters


def _dists(repo_dir, run_hash):
    """{(name, sorted context items): Distributions} of a run."""
    from aim import Repo
    run = Repo.from_path(repo_dir).get_run(run_hash)
    return {(s.name, tuple(sorted(s.context.to_dict().items()))): s
            for s in run.object_sequences('distributions')}


def _assert_histogram_of(dist, tensor):
    weights, edges = np.histogram(tensor.detach().double().numpy().ravel(), bins=64)
    assert dist.bin_count == 64
    np.testing.assert_array_equal(dist.weights, weights)
    assert dist.range == pytest.approx([edges[0], edges[-1]])


def test_per_layer_weight_and_gradient_histograms(make_run, repo_dir):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                                torch.nn.Linear(3, 1, bias=False))
    model[0].bias.requires_grad_(False)  # a frozen parameter has no gradient
    run = make_run()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        track_gradients_dists(model, run, step=step)
        optimizer.step()
        track_params_dists(model, run, step=step, epoch=0)
    run.close()

    dists = _dists(repo_dir, run.hash)
    # Aim 3's names: module path with class names, contexts type/params
    assert set(dists) == {
        ('0.Linear', (('params', 'weights'), ('type', 'data'))),
        ('0.Linear', (('params', 'biases'), ('type', 'data'))),
        ('2.Linear', (('params', 'weights'), ('type', 'data'))),
        ('0.Linear', (('params', 'weights'), ('type', 'gradients'))),
        ('2.Linear', (('params', 'weights'), ('type', 'gradients'))),
    }
    weights = dists['0.Linear', (('params', 'weights'), ('type', 'data'))]
    assert weights.steps == [0, 1, 2] and weights.epochs == [0, 0, 0]
    _assert_histogram_of(weights.values.last_value(), model[0].weight)
    biases = dists['0.Linear', (('params', 'biases'), ('type', 'data'))]
    _assert_histogram_of(biases.values.last_value(), model[0].bias)
    assert biases.values.last_value().weights.sum() == 3
    gradients = dists['2.Linear', (('params', 'weights'), ('type', 'gradients'))]
    assert gradients.count == 3
    # the last gradient histogram is of the gradients the optimizer then applied
    _assert_histogram_of(gradients.values.last_value(), model[2].weight.grad)


def test_nested_modules_are_named_as_aim_names_them(make_run, repo_dir):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(2, 2),
                                               torch.nn.Sequential(torch.nn.Linear(2, 1)))
            self.attention = torch.nn.MultiheadAttention(4, 2)
            self.token = torch.nn.Parameter(torch.ones(2))

    run = make_run()
    model = Net()
    track_params_dists(model, run)
    track_params_dists(model, run)        # without step: the series goes on
    run.close()
    dists = _dists(repo_dir, run.hash)
    names = {(name, dict(ctx)['params']) for name, ctx in dists}
    assert names == {
        ('encoder.Sequential__0.Linear', 'weights'), ('encoder.Sequential__0.Linear', 'biases'),
        ('encoder.Sequential__1.Sequential__0.Linear', 'weights'),
        ('encoder.Sequential__1.Sequential__0.Linear', 'biases'),
        # parameters Aim leaves out keep their attribute name as 'params'
        ('attention.MultiheadAttention', 'in_proj_weight'),
        ('attention.MultiheadAttention', 'in_proj_bias'),
        ('attention.MultiheadAttention__out_proj.NonDynamicallyQuantizableLinear', 'weights'),
        ('attention.MultiheadAttention__out_proj.NonDynamicallyQuantizableLinear', 'biases'),
        ('Net', 'token'),
    }
    token = dists['Net', (('params', 'token'), ('type', 'data'))]
    assert token.steps == [0, 1]
    assert token.values.last_value().weights.sum() == 2
    assert token.values.last_value().range == [0.5, 1.5]   # one value v: [v-0.5, v+0.5]


def test_nothing_before_backward_and_all_nan_gradients_are_skipped(make_run, repo_dir):
    model = torch.nn.Linear(2, 1)
    run = make_run()
    track_gradients_dists(torch.nn.Sequential(model), run, step=0)   # no .grad yet
    model.weight.grad = torch.full_like(model.weight, float('nan'))
    model.bias.grad = torch.tensor([float('nan')])
    with pytest.warns(RuntimeWarning, match='no histogram'):
        track_gradients_dists(torch.nn.Sequential(model), run, step=1)
    model.weight.grad = torch.tensor([[1.0, float('nan')]])     # partly NaN: kept
    track_gradients_dists(torch.nn.Sequential(model), run, step=2)
    run.close()
    dists = _dists(repo_dir, run.hash)
    assert list(dists) == [('0.Linear', (('params', 'weights'), ('type', 'gradients')))]
    dist = dists['0.Linear', (('params', 'weights'), ('type', 'gradients'))]
    assert dist.steps == [2] and dist.values.last_value().weights.sum() == 1

import pytest

torch = pytest.importorskip('torch')

from aim.pytorch import track_gradients_dists, track_params_dists  # noqa: E402

pytestmark = pytest.mark.adapters


def test_per_layer_weight_and_gradient_norms(make_run, repo_dir, metrics_of):
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

    metrics = metrics_of(repo_dir, run.hash)
    assert set(metrics) == {
        ('0', (('params', 'weights'), ('stat', 'norm'), ('type', 'data'))),
        ('0', (('params', 'biases'), ('stat', 'norm'), ('type', 'data'))),
        ('2', (('params', 'weights'), ('stat', 'norm'), ('type', 'data'))),
        ('0', (('params', 'weights'), ('stat', 'norm'), ('type', 'gradients'))),
        ('2', (('params', 'weights'), ('stat', 'norm'), ('type', 'gradients'))),
    }
    weights = metrics('0', type='data', params='weights', stat='norm')
    assert weights.steps.tolist() == [0, 1, 2] and weights.epochs.tolist() == [0, 0, 0]
    assert weights.values.values_list()[-1] == pytest.approx(model[0].weight.norm().item())
    gradients = metrics('2', type='gradients', params='weights', stat='norm')
    assert gradients.count == 3 and all(v > 0 for v in gradients.values.values_list())


def test_parameters_outside_a_layer_keep_their_name(make_run, repo_dir, metrics_of):
    class WithToken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.token = torch.nn.Parameter(torch.ones(2))

    run = make_run()
    track_params_dists(WithToken(), run)
    run.close()
    token = metrics_of(repo_dir, run.hash)('token', type='data', params='token', stat='norm')
    assert token.values.values_list() == pytest.approx([2 ** 0.5])

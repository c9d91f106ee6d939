"""A demo training run tracked into the default repository, then queried.

A tiny logistic regression trained with numpy on synthetic data: three learning rates,
loss and accuracy for train and validation, hyperparameters as params; every few epochs
the weights' distribution, a picture of the decision surface and a one-line report (the
Images, Distributions and Texts explorers of the UI show them).
"""
import numpy as np

from aim import Distribution, Image, Repo, Run, Text


def surface(w: np.ndarray, size: int = 48) -> np.ndarray:
    """The model's probability over a grid of the first two inputs, as an RGB picture."""
    g = np.linspace(-3, 3, size)
    xx, yy = np.meshgrid(g, g)
    z = 1 / (1 + np.exp(-(w[0] * xx + w[1] * yy)))
    return np.stack([z, 0.3 + 0.4 * z * (1 - z), 1 - z], axis=-1)[::-1]


def train(lr: float, epochs: int = 30, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 5))
    true_w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
    y = (x @ true_w + rng.normal(scale=0.5, size=600) > 0).astype(float)
    x_tr, y_tr, x_va, y_va = x[:500], y[:500], x[500:], y[500:]
    w = np.zeros(5)

    # one run per learning rate, under a fixed hash: running the demo again tracks the same
    # three runs again (a value at an existing step replaces it) instead of adding three
    run = Run(run_hash=f'demo-lr-{lr}', experiment='demo')
    run['hparams'] = {'lr': lr, 'epochs': epochs, 'optimizer': 'sgd', 'batch_size': 50}
    run.add_tag('demo')
    step = 0
    for epoch in range(epochs):
        for i in range(0, 500, 50):
            xb, yb = x_tr[i:i + 50], y_tr[i:i + 50]
            p = 1 / (1 + np.exp(-(xb @ w)))
            w -= lr * xb.T @ (p - yb) / len(yb)
            loss = -np.mean(yb * np.log(p + 1e-9) + (1 - yb) * np.log(1 - p + 1e-9))
            run.track(loss, name='loss', step=step, epoch=epoch, context={'subset': 'train'})
            step += 1
        p_va = 1 / (1 + np.exp(-(x_va @ w)))
        val_loss = -np.mean(y_va * np.log(p_va + 1e-9) + (1 - y_va) * np.log(1 - p_va + 1e-9))
        run.track(val_loss, name='loss', step=step, epoch=epoch, context={'subset': 'val'})
        acc = np.mean((p_va > 0.5) == y_va)
        run.track(acc, name='acc', step=step, epoch=epoch, context={'subset': 'val'})
        if epoch % 5 == 4 or epoch == epochs - 1:
            run.track(Distribution(w + rng.normal(scale=0.05, size=(200, 5))), name='weights',
                      step=step, epoch=epoch)
            run.track(Image(surface(w), caption=f'epoch {epoch}'), name='decision surface',
                      step=step, epoch=epoch, context={'subset': 'val'})
            run.track(Text(f'epoch {epoch}: val loss {val_loss:.4f}, accuracy {acc:.3f}'),
                      name='report', step=step, epoch=epoch)
    run.close()
    return run.hash


def main() -> None:
    hashes = [train(lr) for lr in (0.01, 0.1, 0.5)]
    print(f'Tracked {len(hashes)} demo runs: {", ".join(hashes)}')

    repo = Repo.default_repo()
    q = "run.hparams.lr > 0.05 and run.experiment == 'demo'"
    print(f'\nRuns matching {q}:')
    for item in repo.query_runs(q).iter_runs():
        run = item.run
        print(f'  {run.hash}  lr={run["hparams", "lr"]}')

    # the quick-start form of the SDK reference: `=` is read as `==`
    q = "metric = 'loss' and context['subset'] = 'val' and run.experiment == 'demo'"
    print(f'\nFinal validation loss per run (query: {q}):')
    for trace in repo.traces(query=q):
        steps, values = trace.values.sparse_numpy()
        print(f'  {trace.run.hash}  lr={trace.run["hparams"]["lr"]:<5} '
              f'{len(values)} points, last {values[-1]:.4f}, best {values.min():.4f}')

    q = "images.context.subset == 'val' and run.hparams.lr >= 0.1"
    print(f'\nDecision surfaces (query_images: {q}):')
    for seq in repo.query_images(q):
        last = seq.values.last_value()
        print(f'  {seq.run.hash}  {seq.count} images, the last {last.width}x{last.height} '
              f'"{last.caption}"')


if __name__ == '__main__':
    main()

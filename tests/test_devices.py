"""lwgan.devices.deterministic: the same input gives the same gradients on every run, whatever the threads do."""

import torch

from lwgan.devices import deterministic


def gathered_gradient(table: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The gradient of sum(table[index] * weights) with respect to `table`: each row's weights summed (index_put_ with accumulate)."""
    table = table.clone().requires_grad_(True)
    (table[index] * weights).sum().backward()
    return table.grad


def test_the_gradient_of_indexing_is_the_same_on_every_run_and_equals_the_sum_in_order():
    generator = torch.Generator().manual_seed(0)
    rows = 5000
    index = torch.randint(rows, (200_000,), generator=generator)
    weights = torch.randn(200_000, 3, generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        runs = [deterministic(gathered_gradient)(torch.zeros(rows, 3), index, weights) for _ in range(5)]
    finally:
        torch.set_num_threads(threads)
    for run in runs[1:]:
        assert torch.equal(run, runs[0])
    # An independent reference: the sums in float64, one row at a time.
    expected = torch.zeros(rows, 3, dtype=torch.float64).index_add_(0, index, weights.double())
    torch.testing.assert_close(runs[0].double(), expected, rtol=0, atol=1e-4)


def test_the_previous_setting_is_restored_even_after_an_error():
    @deterministic
    def failing() -> None:
        assert torch.are_deterministic_algorithms_enabled()
        raise ValueError("inside")

    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        failing()
    except ValueError:
        pass
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) == before

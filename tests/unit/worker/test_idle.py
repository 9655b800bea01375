"""When an idle worker frees its models."""

from __future__ import annotations

from worker.queue_loop.idle import IdleUnload


class Models:
    def __init__(self) -> None:
        self.loaded, self.unloads = True, 0

    def unload(self) -> None:
        self.loaded, self.unloads = False, self.unloads + 1


def test_models_go_after_the_idle_time_once_and_the_clock_restarts_with_work():
    now, models = [0.0], Models()
    idle = IdleUnload(600, lambda: models.loaded, models.unload, clock=lambda: now[0])
    now[0] = 599
    assert not idle.unload_if_idle() and models.unloads == 0
    now[0] = 600
    assert idle.unload_if_idle() and models.unloads == 1
    now[0] = 1300
    assert not idle.unload_if_idle() and models.unloads == 1  # already unloaded: nothing more to free
    models.loaded = True  # the next file loaded them again
    idle.worked()
    now[0] = 1899
    assert not idle.unload_if_idle()
    now[0] = 1900
    assert idle.unload_if_idle() and models.unloads == 2


def test_zero_keeps_the_models_loaded_for_ever():
    now, models = [0.0], Models()
    idle = IdleUnload(0, lambda: models.loaded, models.unload, clock=lambda: now[0])
    now[0] = 10**9
    assert not idle.unload_if_idle() and models.unloads == 0

"""Notebook 07: what one ``select(0)`` costs with many idle sockets, per selector class.

An idle socket is a connected socket that nobody writes to: registered for
EVENT_READ it is never ready, so every ``select(0)`` returns an empty list.
What it still costs depends on the class:

* ``select()`` and ``poll()`` hand the kernel the whole set of watched
  descriptors on every call, and the kernel looks at each one: the cost grows
  with the number of sockets.
* ``epoll`` (and kqueue, devpoll) keeps the set in the kernel between calls;
  a call only collects what became ready, so idle sockets cost (almost) nothing.
* ``select()`` also stops at FD_SETSIZE: it cannot watch a descriptor numbered
  1024 or more.

The package's modules: `costs` measures into a `CostTable` and says what it
shows, `plot` draws it, `lab` is the notebook's widget. The descriptors
(`driver.fds`) and the timing itself (`driver.probes`) live in the driver.
"""

from .costs import COUNTS, CostPoint, CostTable, measure_select_costs
from .lab import SelectCostLab, select_cost_lab
from .plot import plot_select_costs

__all__ = [
    "COUNTS",
    "CostPoint",
    "CostTable",
    "SelectCostLab",
    "measure_select_costs",
    "plot_select_costs",
    "select_cost_lab",
]

"""Pictures of a run (`plot_report`; `plot_checks`: every check, for a gate without counts to
draw) and of the harness's calibration (`plot_calibration`).

matplotlib is imported on first use and drawn through its Agg canvas, so no global backend is
switched and no window opens.
"""

from .calibration import calibration_p_values, plot_calibration
from .checks_figure import plot_checks
from .report_figure import plot_report

__all__ = ["plot_report", "plot_checks", "plot_calibration", "calibration_p_values"]

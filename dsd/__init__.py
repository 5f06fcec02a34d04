"""dsd: design network design spaces (Radosavovic et al. 2019, 2020) as a tool."""

__version__ = "0.1.0"

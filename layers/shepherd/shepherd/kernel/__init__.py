"""What every part of Shepherd shares and none owns: its errors, its clock and its announcement port.

Registry, rollouts, analysis and adapters import these; this package imports none of them.
"""

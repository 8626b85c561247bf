"""What a run and an experiment are asked to do, checked before anything starts: the run settings
(``config``: every field declared once with its range, help, CLI flag and form widget), the device
(``device``), experiments as variants x seeds (``experiment``), the papers' presets (``presets``) and the
error they raise (``errors.ConfigError``, whose message names the field and what to change)."""

"""Seed-style programs taking turns, deterministically: `stage.stage.Stage` runs `stage.seed`."""

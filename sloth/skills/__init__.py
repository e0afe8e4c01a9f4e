"""Interpretable skills: per-draw rotations aligned across draws (:mod:`sloth.skills.rotation`),
names, level curves and compute optima (:mod:`sloth.skills.analysis`)."""

from sloth.skills.analysis import SkillAnalysis, analyze_skills

__all__ = ["SkillAnalysis", "analyze_skills"]

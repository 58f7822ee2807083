"""Headless-Chromium poster rendering: sizes, network policy and the warm browser engine."""

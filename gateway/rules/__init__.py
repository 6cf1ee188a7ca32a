"""Rules stage: rule files, their compiler and interpreter, explanations, effects on tickets."""

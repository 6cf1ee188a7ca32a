"""Agents stage: who wrote a mail and the proof, commands, agent mail, reply trimming."""

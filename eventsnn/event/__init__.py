"""The event-driven mode: exact continuous-time simulation and timing backprop."""

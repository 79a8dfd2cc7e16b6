#!/usr/bin/env bash
# Placeholder until the Slurm one-node cluster script lands: run the command as is.
exec "$@"

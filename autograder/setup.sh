#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image; the repository is in
# /autograder/source (Gradescope unpacks the uploaded zip there).
set -euo pipefail
cd /autograder/source
bash .ci/install

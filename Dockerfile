# Gradescope's layout, to try an autograder locally: build its zip first
#   grade gradescope --assignment softmax_regression --out autograder.zip
#   docker build -t autograder . && docker run -v "$PWD/submission:/autograder/submission" autograder
# Ubuntu 22.04 is Gradescope's default image (Python 3.10: setup.sh installs 3.11).
FROM ubuntu:22.04
COPY autograder.zip /tmp/autograder.zip
RUN apt-get update -q && apt-get install -y -q --no-install-recommends unzip \
    && mkdir -p /autograder/source /autograder/submission /autograder/results \
    && unzip -q /tmp/autograder.zip -d /autograder/source \
    && cp /autograder/source/run_autograder /autograder/run_autograder \
    && bash /autograder/source/setup.sh
WORKDIR /autograder
CMD ["/autograder/run_autograder"]

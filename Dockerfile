# The container autograder, laid out as Gradescope expects: the repository in
# /autograder/source, setup.sh run at build time, run_autograder run per submission
# against /autograder/submission, results in /autograder/results/results.json.
FROM python:3.11-bookworm
COPY . /autograder/source
RUN mkdir -p /autograder/submission /autograder/results \
    && cp /autograder/source/autograder/run_autograder /autograder/run_autograder \
    && bash /autograder/source/autograder/setup.sh
CMD ["/autograder/run_autograder"]

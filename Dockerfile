# The LVS harness in a container: slim Python 3.11, the package, and tshark (to read the
# pcaps with the LVS dissector). Not built in this project's CI (it has no container
# engine); see docs/ci/README.md.
#
#   docker build -t lvs-harness .
#   docker run --rm -v "$PWD/reports:/work/reports" lvs-harness            # the whole suite
#   docker run --rm lvs-harness requirements                                # any subcommand

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
# tshark's installer asks whether non-root users may capture; noninteractive says no.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Reports go to /work/reports/<run-id>/; mount a host folder there to keep them.
WORKDIR /work
VOLUME ["/work/reports"]
ENTRYPOINT ["harness"]
CMD ["run", "--junit", "reports/junit.xml"]

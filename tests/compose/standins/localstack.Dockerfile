# Stand-in for localstack/localstack: the same server from PyPI, run the way the image runs it.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PINS
RUN python3.11 -m venv /opt/localstack && eval "/opt/localstack/bin/pip install --no-cache-dir -q $PINS"
# LocalStack finds /.dockerenv inside a container and then runs /etc/localstack/init/ready.d hooks.
ENV PATH=/opt/localstack/bin:$PATH GATEWAY_LISTEN=0.0.0.0:4566 DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1
EXPOSE 4566
ENTRYPOINT ["python", "-m", "localstack.runtime.main"]

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    PORTAL_DATA_DIR=/data

WORKDIR /app
# The CPU build of PyTorch first, so sentence-transformers does not pull CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY portal portal
COPY classifier classifier
RUN pip install .
COPY manage.py ./
COPY templates templates
COPY static static
# Production settings, so the hashed-names manifest that pages need is written too.
RUN DJANGO_DEBUG=False DJANGO_SECRET_KEY=collectstatic-at-build-time-only \
    python manage.py collectstatic --noinput

RUN useradd --create-home portal && mkdir -p /data && chown portal /data
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "60", "--no-control-socket"]

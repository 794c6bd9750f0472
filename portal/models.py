import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portal.ids import validate_id

DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2-onnx"


class App(models.Model):
    """A user's workspace: its concepts, inputs, datasets and models belong to it alone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="apps")
    slug = models.CharField("App ID", max_length=64, validators=[validate_id])
    description = models.CharField(max_length=500, blank=True)
    base_model = models.CharField(max_length=200, default=DEFAULT_BASE_MODEL)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            # Also serves the lookup every app page makes: (owner, slug).
            models.UniqueConstraint(fields=["owner", "slug"], name="app_slug_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("portal:app-overview", args=[self.slug])

    def counts(self) -> dict[str, int]:
        return {
            "inputs": self.inputs.count(),
            "labeled": Annotation.objects.filter(input__app=self)
            .values("input")
            .distinct()
            .count(),
            "concepts": self.concepts.count(),
            "datasets": self.datasets.count(),
        }

    def recent_activity(self, limit: int = 8) -> list[tuple]:
        """(time, description, url) of the latest imports, dataset versions, trainings and
        evaluations."""
        imports = self.import_jobs.order_by("-created")[:limit]
        versions = (
            DatasetVersion.objects.filter(dataset__app=self)
            .select_related("dataset")
            .order_by("-created")[:limit]
        )
        trainings = (
            ModelVersion.objects.filter(model__app=self)
            .select_related("model")
            .defer("head", "log")
            .order_by("-created")[:limit]
        )
        evaluations = (
            Evaluation.objects.filter(model_version__model__app=self)
            .select_related("model_version__model", "dataset_version__dataset")
            .defer("data", "metrics", "model_version__head", "model_version__log")
            .order_by("-created")[:limit]
        )
        events = (
            [
                (
                    job.created,
                    f"Import of {job.filename}: {job.get_status_display().lower()}"
                    + (
                        f", {job.created_count} inputs"
                        if job.status == ImportJob.Status.DONE
                        else ""
                    ),
                    reverse("portal:import-status", args=[self.slug, job.pk]),
                )
                for job in imports
            ]
            + [
                (
                    v.created,
                    f"Version v{v.number} of dataset {v.dataset.slug}: {v.status.lower()}",
                    v.dataset.get_absolute_url(),
                )
                for v in versions
            ]
            + [
                (
                    t.created,
                    f"Training of {t.model.slug} v{t.number}: {t.status_words.lower()}",
                    f"{t.model.get_absolute_url()}?version={t.number}",
                )
                for t in trainings
            ]
            + [
                (
                    e.created,
                    f"Evaluation of {e.model_version.model.slug} v{e.model_version.number} on "
                    f"{e.dataset_version.dataset.slug} v{e.dataset_version.number}: "
                    f"{e.status_words.lower()}",
                    reverse("portal:evaluation", args=[self.slug, e.pk]),
                )
                for e in evaluations
            ]
        )
        return sorted(events, key=lambda event: event[0], reverse=True)[:limit]


class Heartbeat(models.Model):
    """The last time a worker ran a queued task: proof that the queue really works."""

    name = models.CharField(max_length=100, unique=True)
    worker = models.CharField(max_length=200)
    seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} by {self.worker} at {self.seen:%Y-%m-%d %H:%M:%S}"


class Concept(models.Model):
    app = models.ForeignKey(App, models.CASCADE, related_name="concepts")
    slug = models.CharField("Concept ID", max_length=64, validators=[validate_id])
    name = models.CharField(max_length=200)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            # Also serves every concept lookup by ID within an app.
            models.UniqueConstraint(fields=["app", "slug"], name="concept_slug_unique_per_app"),
        ]

    def __str__(self) -> str:
        return self.slug


def text_hash(text: str) -> str:
    """The key of a text in the embedding cache and in dataset versions."""
    return hashlib.sha256(text.encode()).hexdigest()


class InputQuerySet(models.QuerySet):
    def labeled(self) -> "InputQuerySet":
        return self.filter(annotations__isnull=False).distinct()

    def with_concept(self, concept: "Concept", value: int) -> "InputQuerySet":
        return self.filter(annotations__concept=concept, annotations__value=value)

    def unlabeled(self) -> "InputQuerySet":
        return self.filter(annotations__isnull=True)


class Input(models.Model):
    """A text of an app. Its text never changes; its labels are its annotations.

    `revision` goes up with every label change, so two tabs editing the same input
    can tell that the other one saved first.
    """

    app = models.ForeignKey(App, models.CASCADE, related_name="inputs")
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    external_id = models.CharField("Input ID", max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now)
    revision = models.PositiveIntegerField(default=0)

    objects = InputQuerySet.as_manager()

    class Meta:
        indexes = [
            # The inputs explorer: newest first within an app.
            models.Index(fields=["app", "-created", "-id"], name="input_app_created"),
            # Duplicate detection on upload: same text in the app.
            models.Index(fields=["app", "text_hash"], name="input_app_hash"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "external_id"],
                condition=~models.Q(external_id=""),
                name="input_external_id_unique_per_app",
            ),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class Annotation(models.Model):
    POSITIVE, NEGATIVE = 1, 0
    VALUES = [(POSITIVE, "positive"), (NEGATIVE, "negative")]

    input = models.ForeignKey(Input, models.CASCADE, related_name="annotations")
    concept = models.ForeignKey(Concept, models.CASCADE, related_name="annotations")
    value = models.SmallIntegerField(choices=VALUES, default=POSITIVE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    by_hand = models.BooleanField(default=False)  # given in the pages, not by a file or the API

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["input", "concept"], name="one_label_per_concept"),
        ]
        indexes = [
            # The explorer's concept filter and the concept list's counts.
            models.Index(fields=["concept", "value"], name="annotation_concept_value"),
        ]

    def __str__(self) -> str:
        return f"{self.concept_id}={self.value} on {self.input_id}"


class Dataset(models.Model):
    app = models.ForeignKey(App, models.CASCADE, related_name="datasets")
    slug = models.CharField("Dataset ID", max_length=64, validators=[validate_id])
    description = models.CharField(max_length=500, blank=True)
    inputs = models.ManyToManyField(Input, related_name="datasets", blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["app", "slug"], name="dataset_slug_unique_per_app"),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("portal:dataset-detail", args=[self.app.slug, self.slug])


class DatasetVersion(models.Model):
    """An immutable snapshot of a dataset's inputs and labels.

    PENDING -> IN_PROGRESS -> READY | FAILURE. Rows are written once, by the snapshot
    job, and never change: later edits of the dataset touch only live inputs.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        IN_PROGRESS = "IN_PROGRESS"
        READY = "READY"
        FAILURE = "FAILURE"

    dataset = models.ForeignKey(Dataset, models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    input_count = models.PositiveIntegerField(default=0)
    # {"spam": {"positive": 5, "negative": 0}, ...}
    concept_counts = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILURE)


class DatasetVersionRow(models.Model):
    """One input as it was when the version was made; it outlives the input."""

    version = models.ForeignKey(DatasetVersion, models.CASCADE, related_name="rows")
    input = models.ForeignKey(Input, models.SET_NULL, null=True, related_name="+")
    external_id = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    positive = models.JSONField(default=list)
    negative = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.version}: {self.text[:40]}"


class ImportJob(models.Model):
    """A CSV upload. PENDING -> RUNNING -> DONE | FAILED; nothing is saved unless DONE."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    app = models.ForeignKey(App, models.CASCADE, related_name="import_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True)
    filename = models.CharField(max_length=255)
    data = models.BinaryField()
    dataset_ids = models.JSONField(default=list)
    concept_ids = models.JSONField(default=list)
    label_map = models.JSONField(default=dict)  # the file's labels renamed: {"ham": "not-spam"}
    attempts = models.PositiveSmallIntegerField(default=0)  # deliveries that started it
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def rows_per_second(self) -> float | None:
        if not (self.finished and self.started and self.rows_done):
            return None
        return self.rows_done / max((self.finished - self.started).total_seconds(), 1e-3)


class Embedding(models.Model):
    """A cache: a text is embedded once per base model, ever."""

    base_model = models.CharField(max_length=200)
    text_hash = models.CharField(max_length=64)
    vector = models.BinaryField()  # float32, little-endian, L2-normalised

    class Meta:
        constraints = [
            # Also the lookup of every cache read: (base model, text hash).
            models.UniqueConstraint(fields=["base_model", "text_hash"], name="embedding_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.base_model}:{self.text_hash[:12]}"


class EmbeddingChunk(models.Model):
    """Up to one batch of an app's new inputs, to embed in the background.

    WAITING → QUEUED (its message is in the bulk queue) → RUNNING → deleted when done.
    Only a few chunks of an app are queued or running at a time (`portal.embedding`), so
    the bulk queue takes turns between apps.
    """

    class State(models.TextChoices):
        WAITING = "WAITING"
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"

    app = models.ForeignKey(App, models.CASCADE, related_name="embedding_chunks")
    input_ids = models.JSONField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.WAITING)
    changed = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # An app's next waiting chunk, and how many of its chunks are in the queue.
            models.Index(fields=["app", "state"], name="chunk_app_state"),
        ]

    def __str__(self) -> str:
        return f"{self.app_id}:{self.pk} {self.state}"


# The head fitted on the embeddings: "Auto" picks embedding-only or hybrid by cross-validation.
HEADS = ("Auto", "Embedding only", "Hybrid")


def default_params() -> dict:
    return {
        "dataset_id": "",
        "dataset_version_id": "",
        "concepts": [],
        "train_params": {
            "base_embed_model": DEFAULT_BASE_MODEL,
            "enrich_dataset": "Automatic",
            "C": None,
            "class_weight": None,
            "head": "Auto",
        },
        "inference_params": {"min_value": 0.0, "max_concepts": 20, "select_concepts": []},
        "concepts_mutually_exclusive": False,
    }


class TrainableModel(models.Model):
    """A Transfer Learn model of an app: its current parameters and its versions."""

    TYPE = "embedding-classifier"

    app = models.ForeignKey(App, models.CASCADE, related_name="trainable_models")
    slug = models.CharField("Model ID", max_length=64, validators=[validate_id])
    description = models.CharField(max_length=500, blank=True)
    model_type = models.CharField(max_length=50, default=TYPE)
    params = models.JSONField(default=default_params)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["app", "slug"], name="model_slug_unique_per_app"),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("portal:model-detail", args=[self.app.slug, self.slug])

    def latest_trained(self) -> "ModelVersion | None":
        return self.versions.filter(status=ModelVersion.Status.TRAINED).order_by("-number").first()


class ModelVersion(models.Model):
    """One training run, with a frozen copy of the parameters and the trained head.

    MODEL-QUEUED-FOR-TRAINING -> MODEL-TRAINING -> MODEL-TRAINED | MODEL-TRAINING-FAILED.
    Transitions are conditional updates, so a task delivered twice trains once; a
    TRAINING version whose heartbeat went stale (its worker died) may be claimed again.
    """

    class Status(models.IntegerChoices):
        TRAINED = 21100, "MODEL-TRAINED"
        TRAINING = 21101, "MODEL-TRAINING"
        QUEUED = 21103, "MODEL-QUEUED-FOR-TRAINING"
        FAILED = 21106, "MODEL-TRAINING-FAILED"

    model = models.ForeignKey(TrainableModel, models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.IntegerField(choices=Status, default=Status.QUEUED)
    params = models.JSONField()
    dataset_version = models.ForeignKey(
        DatasetVersion, models.SET_NULL, null=True, related_name="model_versions"
    )
    concepts = models.JSONField(default=list)
    progress = models.FloatField(default=0.0)  # 0..1
    stage = models.CharField(max_length=100, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    embed_seconds = models.FloatField(null=True, blank=True)
    fit_seconds = models.FloatField(null=True, blank=True)
    head = models.BinaryField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Written every few seconds while a worker trains: a stale one means the worker died.
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model} v{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.TRAINED, self.Status.FAILED)

    @property
    def status_words(self) -> str:
        return self.words(self.status)

    @classmethod
    def words(cls, status: int) -> str:
        """A status as the pages say it; the code and its name are for API users."""
        return {
            cls.Status.TRAINED: "Trained",
            cls.Status.TRAINING: "Training…",
            cls.Status.QUEUED: "Waiting to train",
            cls.Status.FAILED: "Training failed",
        }[status]

    @property
    def state(self) -> str:
        """What the model page shows of a training run: it changes with status, stage and
        progress (the log is written with them)."""
        return f"{self.status}:{self.stage}:{self.progress:.3f}"


class PredictionJob(models.Model):
    """A CSV of texts to predict. PENDING -> RUNNING -> DONE | FAILED; DONE holds the result."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    model_version = models.ForeignKey(ModelVersion, models.CASCADE, related_name="prediction_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True)
    filename = models.CharField(max_length=255)
    data = models.BinaryField()
    result = models.BinaryField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        return round(100 * self.rows_done / self.rows_total) if self.rows_total else 0


class Evaluation(models.Model):
    """A trained model version scored on a dataset version of its app.

    On the version the model was trained on, each input is scored by a head trained
    without it (stratified k-fold cross-validation); on any other version, by the trained
    head (a held-out test set). MODEL-QUEUED-FOR-EVALUATION -> MODEL-EVALUATING ->
    MODEL-EVALUATED | MODEL-EVALUATION-FAILED. `metrics` holds `classifier.evaluation`'s
    report at threshold 0.5 plus the counts at every threshold step (`sweep`); `data`
    holds the labels, probabilities and dataset-version row of every scored input.
    """

    class Status(models.IntegerChoices):
        EVALUATED = 21300, "MODEL-EVALUATED"
        EVALUATING = 21301, "MODEL-EVALUATING"
        QUEUED = 21303, "MODEL-QUEUED-FOR-EVALUATION"
        FAILED = 21317, "MODEL-EVALUATION-FAILED"

    model_version = models.ForeignKey(ModelVersion, models.CASCADE, related_name="evaluations")
    dataset_version = models.ForeignKey(DatasetVersion, models.CASCADE, related_name="evaluations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True)
    label = models.CharField(max_length=100, blank=True)  # a name the user gave it (API eval_id)
    kfold = models.BooleanField(default=False)
    folds = models.PositiveSmallIntegerField(null=True, blank=True)
    folds_note = models.CharField(max_length=300, blank=True)
    # Not k-fold: how many of the evaluated version's inputs (by text) the training version
    # holds too, of how many; and whether only the others were scored.
    seen = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    unseen_only = models.BooleanField(default=False)
    status = models.IntegerField(choices=Status, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # 0..1
    stage = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    metrics = models.JSONField(null=True, blank=True)
    data = models.BinaryField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # deliveries that started it
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.dataset_version}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.EVALUATED, self.Status.FAILED)

    @property
    def status_words(self) -> str:
        """The status as the pages say it; the code and its name are for API users."""
        return {
            self.Status.EVALUATED: "Evaluated",
            self.Status.EVALUATING: "Evaluating…",
            self.Status.QUEUED: "Waiting to evaluate",
            self.Status.FAILED: "Evaluation failed",
        }[self.status]

    @property
    def method(self) -> str:
        if self.kfold:
            return f"{self.folds}-fold cross-validation" if self.folds else "cross-validation"
        if self.unseen_only:
            return "held-out inputs only"
        if self.seen and self.seen == self.total:
            return "not held-out: every input was in the training data"
        if self.seen:
            return "partly held-out test set"
        return "held-out test set"

    @property
    def overlap(self) -> str:
        """What the training data and the evaluated inputs share, in words ("" if nothing)."""
        if self.kfold or not self.seen:
            return ""
        shared = f"{self.seen:,} of {self.total:,} inputs were in the training data"
        if self.unseen_only:
            return f"{shared}; only the other {self.total - self.seen:,} were scored"
        return shared


class ApiToken(models.Model):
    """A key for the REST API (`Authorization: Token <key>`). Only its SHA-256 is stored:
    the key is shown once, when it is made. A revoked token is refused."""

    PREFIX = "tcp_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)  # the key's first characters, to tell tokens apart
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: "models.Model", name: str) -> tuple["ApiToken", str]:
        """A new token for `user` and its key, which is not stored and can't be shown again."""
        key = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash(key), hint=key[:12])
        return token, key

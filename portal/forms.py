import json

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm

from portal.ids import ID_HELP, is_valid_id
from portal.models import HEADS, App, Concept, Dataset, TrainableModel, default_params

# Path segments under /apps/ and /datasets/ that are pages rather than objects.
RESERVED_APP_IDS = RESERVED_DATASET_IDS = frozenset({"new"})


class SignupForm(UserCreationForm):
    pass


class AppForm(forms.ModelForm):
    INPUT_TYPES = [("text", "Text/Document"), ("image", "Image/Video")]

    input_type = forms.ChoiceField(
        label="Primary input type", choices=INPUT_TYPES, initial="text", widget=forms.RadioSelect
    )

    class Meta:
        model = App
        fields = ["slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}

    def __init__(self, *args, owner, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.owner = owner

    def clean_input_type(self) -> str:
        # Only text is supported; other types are shown so people know where they are.
        if self.cleaned_data["input_type"] != "text":
            raise forms.ValidationError("Only Text/Document apps are available.")
        return "text"

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug.lower() in RESERVED_APP_IDS:
            raise forms.ValidationError(f"“{slug}” is reserved; choose another app ID.")
        if App.objects.filter(owner=self.instance.owner, slug__iexact=slug).exists():
            raise forms.ValidationError(f"You already have an app called “{slug}”.")
        return slug


class AppSettingsForm(forms.ModelForm):
    class Meta:
        model = App
        fields = ["description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class UploadForm(forms.Form):
    """The Upload inputs window: typed texts or a CSV file, plus datasets and concepts."""

    MODES = [("csv", ".csv"), ("text", "Text")]

    mode = forms.ChoiceField(choices=MODES, initial="text", widget=forms.HiddenInput)
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    file = forms.FileField(required=False)
    datasets = forms.ModelMultipleChoiceField(
        queryset=Dataset.objects.none(), to_field_name="slug", required=False
    )
    concepts = forms.ModelMultipleChoiceField(
        queryset=Concept.objects.none(), to_field_name="slug", required=False
    )
    no_dataset = forms.BooleanField(required=False)  # inputs in no dataset, on purpose
    # The file's labels renamed, as JSON {"file label": "concept ID"}: the upload window's
    # preview fills it in.
    label_map = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, app: App, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["datasets"].queryset = Dataset.objects.filter(app=app)
        self.fields["concepts"].queryset = Concept.objects.filter(app=app)

    def clean(self) -> dict:
        data = super().clean()
        if "datasets" in data and not data["datasets"] and not data.get("no_dataset"):
            self.add_error(
                "datasets",
                "Choose a dataset: inputs in no dataset are in no version, so no training "
                "sees them. Or tick “Upload without a dataset”.",
            )
        if data.get("mode") == "text":
            lines = data.get("text", "").splitlines()
            limit = settings.PORTAL_MAX_TEXT_LENGTH
            if not any(line.strip() for line in lines):
                self.add_error("text", "Type at least one text (one input per line).")
            elif any(len(line.strip()) > limit for line in lines):
                self.add_error("text", f"A line is longer than {limit:,} characters.")
        if data.get("mode") == "csv":
            data["label_map"] = self._label_map(data.get("label_map", ""))
            upload = data.get("file")
            if upload is None:
                self.add_error("file", "Choose a .csv file.")
            elif upload.size > settings.PORTAL_MAX_UPLOAD_BYTES:
                limit = settings.PORTAL_MAX_UPLOAD_BYTES // (1024 * 1024)
                self.add_error("file", f"The file is larger than the {limit} MB limit.")
        return data

    def _label_map(self, posted: str) -> dict[str, str]:
        if not posted:
            return {}
        try:
            mapping = json.loads(posted)
        except ValueError:
            mapping = None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            self.add_error(None, "The label mapping is not valid: choose the file again.")
            return {}
        mapping = {k.strip(): v.strip() for k, v in mapping.items() if v.strip()}
        for label, concept in mapping.items():
            if not is_valid_id(concept):
                self.add_error(
                    None,
                    f"“{label}” → “{concept}”: “{concept}” is not a valid concept ID. {ID_HELP}",
                )
        return mapping


class AppObjectForm(forms.ModelForm):
    """Creates an object of an app, whose ID is unique in the app whatever its case."""

    noun = "object"
    reserved: frozenset[str] = frozenset()  # path segments that are pages, not objects

    def __init__(self, *args, app: App, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.app = app

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug.lower() in self.reserved:
            raise forms.ValidationError(f"“{slug}” is reserved; choose another {self.noun} ID.")
        taken = type(self.instance).objects.filter(app=self.instance.app, slug__iexact=slug)
        if taken.exists():
            raise forms.ValidationError(f"This app already has a {self.noun} called “{slug}”.")
        return slug


class ConceptForm(AppObjectForm):
    noun = "concept"

    class Meta:
        model = Concept
        fields = ["slug", "name"]
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False

    def clean(self) -> dict:
        cleaned = super().clean()
        # The display name defaults to the ID.
        if not cleaned.get("name") and cleaned.get("slug"):
            cleaned["name"] = cleaned["slug"]
        return cleaned


class RenameForm(forms.ModelForm):
    class Meta:
        model = Concept
        fields = ["name"]


class DatasetForm(AppObjectForm):
    noun = "dataset"
    reserved = RESERVED_DATASET_IDS

    class Meta:
        model = Dataset
        fields = ["slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}


# Path segments under /models/ that are pages rather than models.
RESERVED_MODEL_IDS = frozenset({"new", "types"})


class ModelCreateForm(AppObjectForm):
    noun = "model"
    reserved = RESERVED_MODEL_IDS

    class Meta:
        model = TrainableModel
        fields = ["slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}


class IdListField(forms.MultipleChoiceField):
    """A list of concept IDs. Any well-formed ID passes here: whether the dataset version
    has it is for training.start_training to say, in words."""

    def valid_value(self, value: str) -> bool:
        return is_valid_id(value)


class ModelSetupForm(forms.Form):
    """The set-up form of a Transfer Learn model, read from and written to `model.params`.

    It checks shapes only; training.start_training checks the values against the app.
    """

    ENRICH = [("Automatic", "Automatic"), ("Disabled", "Disabled")]
    CLASS_WEIGHTS = [("none", "None"), ("balanced", "Balanced")]

    dataset = forms.CharField(required=False)
    dataset_version = forms.RegexField(r"^[0-9]*$", required=False)
    base_embed_model = forms.ChoiceField(label="Base embedding model")
    concepts = IdListField(required=False)
    concepts_mutually_exclusive = forms.BooleanField(required=False)
    enrich_dataset = forms.ChoiceField(choices=ENRICH)
    min_value = forms.FloatField(min_value=0.0, max_value=1.0)
    max_concepts = forms.IntegerField(min_value=1, max_value=200)
    select_concepts = IdListField(required=False)
    C = forms.CharField(required=False)
    class_weight = forms.ChoiceField(choices=CLASS_WEIGHTS)
    head = forms.ChoiceField(choices=[(h, h) for h in HEADS], required=False)

    def __init__(self, *args, base_models: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_embed_model"].choices = [(m, m) for m in base_models]

    @staticmethod
    def initial_from(params: dict) -> dict:
        """The form's values for `params` (missing keys take the defaults)."""
        defaults = default_params()
        train = {**defaults["train_params"], **params.get("train_params", {})}
        inference = {**defaults["inference_params"], **params.get("inference_params", {})}
        return {
            "dataset": params.get("dataset_id", ""),
            "dataset_version": params.get("dataset_version_id", ""),
            "concepts": list(params.get("concepts", [])),
            "concepts_mutually_exclusive": bool(params.get("concepts_mutually_exclusive")),
            "base_embed_model": train["base_embed_model"],
            "enrich_dataset": train["enrich_dataset"],
            "C": "auto" if train["C"] is None else f"{train['C']:g}",
            "class_weight": train["class_weight"] or "none",
            "head": train["head"],
            "min_value": inference["min_value"],
            "max_concepts": inference["max_concepts"],
            "select_concepts": list(inference["select_concepts"]),
        }

    def clean_C(self) -> float | None:
        value = self.cleaned_data["C"].strip().lower()
        if value in ("", "auto"):
            return None
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if not 0 < number < float("inf"):
            raise forms.ValidationError("Enter “auto” or a positive number, such as 1 or 0.5.")
        return number

    def params(self) -> dict:
        """The model's parameters in the portal's shape."""
        data = self.cleaned_data
        return {
            "dataset_id": data["dataset"],
            "dataset_version_id": data["dataset_version"],
            "concepts": list(dict.fromkeys(data["concepts"])),
            "train_params": {
                "base_embed_model": data["base_embed_model"],
                "enrich_dataset": data["enrich_dataset"],
                "C": data["C"],
                "class_weight": None if data["class_weight"] == "none" else "balanced",
                "head": data["head"] or "Auto",
            },
            "inference_params": {
                "min_value": data["min_value"],
                "max_concepts": data["max_concepts"],
                "select_concepts": list(dict.fromkeys(data["select_concepts"])),
            },
            "concepts_mutually_exclusive": data["concepts_mutually_exclusive"],
        }

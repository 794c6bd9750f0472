from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm

from portal.models import App, Concept, Dataset

# Path segments under /apps/ and /datasets/ that are pages rather than objects.
RESERVED_APP_IDS = RESERVED_DATASET_IDS = {"new"}


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

    def __init__(self, *args, app: App, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["datasets"].queryset = Dataset.objects.filter(app=app)
        self.fields["concepts"].queryset = Concept.objects.filter(app=app)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("mode") == "text" and not data.get("text", "").strip():
            self.add_error("text", "Type at least one text (one input per line).")
        if data.get("mode") == "csv":
            upload = data.get("file")
            if upload is None:
                self.add_error("file", "Choose a .csv file.")
            elif upload.size > settings.PORTAL_MAX_UPLOAD_BYTES:
                limit = settings.PORTAL_MAX_UPLOAD_BYTES // (1024 * 1024)
                self.add_error("file", f"The file is larger than the {limit} MB limit.")
        return data


class ConceptForm(forms.ModelForm):
    class Meta:
        model = Concept
        fields = ["slug", "name"]
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}

    def __init__(self, *args, app: App, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.app = app
        self.fields["name"].required = False

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if Concept.objects.filter(app=self.instance.app, slug__iexact=slug).exists():
            raise forms.ValidationError(f"This app already has a concept called “{slug}”.")
        return slug

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


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"slug": "Letters, digits, - and _. You can't change it later."}

    def __init__(self, *args, app: App, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.app = app

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug.lower() in RESERVED_DATASET_IDS:
            raise forms.ValidationError(f"“{slug}” is reserved; choose another dataset ID.")
        if Dataset.objects.filter(app=self.instance.app, slug__iexact=slug).exists():
            raise forms.ValidationError(f"This app already has a dataset called “{slug}”.")
        return slug

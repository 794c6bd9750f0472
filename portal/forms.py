from django import forms
from django.contrib.auth.forms import UserCreationForm

from portal.models import App

# Path segments under /apps/ that are pages rather than apps.
RESERVED_APP_IDS = {"new"}


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

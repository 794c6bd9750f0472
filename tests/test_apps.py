import pytest
from django.utils import timezone

from portal.models import App, Dataset, DatasetVersion, Evaluation, ModelVersion, TrainableModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter", description="Spam or not")


def test_home_lists_my_apps_only(alice_client, app, bob):
    App.objects.create(owner=bob, slug="bobs-app")
    response = alice_client.get("/")
    assert b"spam-filter" in response.content
    assert b"bobs-app" not in response.content
    assert b"Create an App" in response.content


def test_home_invites_a_newcomer_to_create_an_app(alice_client):
    assert b"Create your first app" in alice_client.get("/").content


def test_it_creates_an_app(alice_client, alice):
    response = alice_client.post(
        "/apps/new/", {"slug": "news", "description": "Topics", "input_type": "text"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/apps/news/"
    assert App.objects.get(owner=alice, slug="news").description == "Topics"


def test_it_creates_an_app_over_htmx(alice_client):
    response = alice_client.post(
        "/apps/new/", {"slug": "news", "input_type": "text"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/apps/news/"


def test_the_form_fragment_has_no_page_around_it(alice_client):
    response = alice_client.get("/apps/new/", headers={"HX-Request": "true"})
    assert b"<html" not in response.content
    assert b'id="create-app-form"' in response.content
    assert b"<html" in alice_client.get("/apps/new/").content


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("has space", b"Letters, digits"),
        ("-leading", b"Letters, digits"),
        ("", b"This field is required"),
        ("new", b"reserved"),
        ("SPAM-filter", b"You already have an app"),
    ],
)
def test_it_rejects_bad_app_ids(alice_client, app, slug, message):
    response = alice_client.post(
        "/apps/new/", {"slug": slug, "input_type": "text"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert message in response.content
    assert App.objects.count() == 1


def test_it_accepts_only_text_apps(alice_client):
    response = alice_client.post("/apps/new/", {"slug": "pics", "input_type": "image"})
    assert b"Only Text/Document apps are available" in response.content
    assert not App.objects.filter(slug="pics").exists()


def test_two_users_may_pick_the_same_app_id(alice_client, app, bob, client):
    client.force_login(bob)
    client.post("/apps/new/", {"slug": "spam-filter", "input_type": "text"})
    assert App.objects.filter(slug="spam-filter").count() == 2


def test_overview_shows_the_app_and_sidebar(alice_client, app):
    response = alice_client.get("/apps/spam-filter/")
    assert response.status_code == 200
    for label in (b"Overview", b"Settings", b"Spam or not", b"all-MiniLM-L6-v2"):
        assert label in response.content


def test_overview_shows_models_trainings_and_evaluations(alice_client, app):
    dataset = Dataset.objects.create(app=app, slug="emails")
    dataset_version = DatasetVersion.objects.create(
        dataset=dataset, number=1, status=DatasetVersion.Status.READY
    )
    model = TrainableModel.objects.create(app=app, slug="detector")
    TrainableModel.objects.create(app=app, slug="fresh")
    version = ModelVersion.objects.create(
        model=model,
        number=1,
        status=ModelVersion.Status.TRAINED,
        dataset_version=dataset_version,
        params={},
    )
    evaluation = Evaluation.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        kfold=True,
        folds=5,
        status=Evaluation.Status.EVALUATED,
        finished=timezone.now(),
        metrics={"summary": {"macro_f1": 0.875}},
    )
    page = " ".join(alice_client.get("/apps/spam-filter/").content.decode().split())
    models = page.split('<table class="overview-models">')[1].split("</table>")[0]
    detector = models.split('href="/apps/spam-filter/models/detector/"')[1].split("</tr>")[0]
    assert "v1 ·" in detector and ">Trained</span>" in detector
    assert f'href="/apps/spam-filter/evaluations/{evaluation.pk}/"' in detector
    assert "0.875" in detector and "5-fold cross-validation" in detector
    fresh = models.split('href="/apps/spam-filter/models/fresh/"')[1].split("</tr>")[0]
    assert "Not trained yet" in fresh and "None yet" in fresh
    activity = page.split("<h2>Recent activity</h2>")[1]
    assert "Training of detector v1: trained" in activity
    assert "Evaluation of detector v1 on emails v1: evaluated" in activity


def test_it_saves_settings(alice_client, app):
    response = alice_client.post("/apps/spam-filter/settings/", {"description": "New words"})
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.description == "New words"


def test_delete_needs_the_app_id_typed(alice_client, app):
    alice_client.post("/apps/spam-filter/delete/", {"confirm": "wrong"})
    assert App.objects.filter(pk=app.pk).exists()
    response = alice_client.post("/apps/spam-filter/delete/", {"confirm": "spam-filter"})
    assert response["Location"] == "/"
    assert not App.objects.filter(pk=app.pk).exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/apps/spam-filter/"),
        ("get", "/apps/spam-filter/settings/"),
        ("post", "/apps/spam-filter/settings/"),
        ("post", "/apps/spam-filter/delete/"),
    ],
)
def test_it_checks_ownership(client, app, charlie, method, url):
    client.force_login(charlie)
    data = {"confirm": "spam-filter", "description": "mine now"}
    response = getattr(client, method)(url, data)
    assert response.status_code == 404
    app.refresh_from_db()
    assert app.description == "Spam or not"


def test_anonymous_users_are_sent_to_sign_in(client, app):
    response = client.get("/apps/spam-filter/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]

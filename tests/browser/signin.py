from tests.conftest import PASSWORD


def sign_in(page, url: str, username: str = "alice") -> None:
    """Sign in through the login form, then wait for the apps page."""
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Apps").wait_for()

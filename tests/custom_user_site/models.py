from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class EmailUserManager(BaseUserManager):
    def create_user(self, email, password=None):  # type: ignore[no-untyped-def]
        user = self.model(email=email)
        user.set_password(password)
        user.save()
        return user


class EmailUser(AbstractBaseUser):
    """A user model with no ``username`` field and a UUID-like text primary key."""

    code = models.CharField(primary_key=True, max_length=20)
    email = models.EmailField(unique=True)
    USERNAME_FIELD = "email"
    objects = EmailUserManager()

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.code:
            self.code = "u:" + self.email.split("@")[0]
        super().save(*args, **kwargs)

from django.urls import path

from journal import views

urlpatterns = [
    path("o/<slug:org>/journal/", views.journal_page, name="journal"),
]

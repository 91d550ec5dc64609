from django.urls import path

from tracking import views

urlpatterns = [
    path("c/<str:token>", views.click, name="tracking-click"),
    path("o/<str:token>.gif", views.open_pixel, name="tracking-open"),
]

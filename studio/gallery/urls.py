from django.urls import path

from studio.gallery import views

urlpatterns = [
    path("galleries/", views.galleries, name="galleries"),
    path("galleries/new/", views.create_gallery, name="gallery_create"),
    path("galleries/<uuid:code>/", views.gallery, name="gallery"),
    path("galleries/<uuid:code>/edit/", views.edit_gallery, name="gallery_edit"),
    path("galleries/<uuid:code>/delete/", views.delete_gallery, name="gallery_delete"),
    path("galleries/<uuid:code>/cover/", views.set_cover, name="gallery_set_cover"),
    path("galleries/<uuid:code>/items/", views.add_item, name="gallery_add_item"),
    path("galleries/<uuid:code>/items/<uuid:asset>/remove/", views.remove_item, name="gallery_remove_item"),
    path("galleries/<uuid:code>/items/<uuid:asset>/move/", views.move_item, name="gallery_move_item"),
    path("galleries/<uuid:code>/links/", views.create_link, name="gallery_create_link"),
    path("galleries/<uuid:code>/links/<uuid:link>/revoke/", views.revoke_link, name="gallery_revoke_link"),
    path("s/<str:token>/", views.share, name="share"),
    path("s/<str:token>/assets/<uuid:asset>/", views.share_asset, name="share_asset"),
    path("s/<str:token>/assets/<uuid:asset>/thumbnail/", views.share_thumbnail, name="share_thumbnail"),
    path("s/<str:token>/download.zip", views.share_zip, name="share_zip"),
]

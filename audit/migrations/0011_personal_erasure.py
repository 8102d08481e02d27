"""Erasure of a person (docs/operations.md): ``personal`` (which committed values are a person's) and
``erasures``; the trigger now allows the personal columns to change in an update that raises ``erasures``
by one, every other column unchanged. Every other UPDATE and every DELETE is still refused."""

from django.db import migrations, models

from csm.db import append_only



def _reverse_to_strict(apps, schema_editor):
    append_only("audit_auditevent").code(apps, schema_editor)



class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0010_retention_actions'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='personal',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('org.created', 'Org created'), ('org.updated', 'Org updated'), ('org.retention_changed', 'Retention settings changed'), ('retention.applied', 'Retention removed stored report bodies and evidence files'), ('person.erased', "A person's name, email and addresses erased"), ('member.added', 'Member added'), ('member.role_changed', 'Member role changed'), ('member.removed', 'Member removed'), ('invitation.created', 'Invitation created'), ('invitation.accepted', 'Invitation accepted'), ('invitation.revoked', 'Invitation revoked'), ('service_account.created', 'Service account created'), ('service_account.updated', 'Service account updated'), ('service_account.deactivated', 'Service account deactivated'), ('token.created', 'Token created'), ('token.rotated', 'Token rotated'), ('token.revoked', 'Token revoked'), ('access.denied', 'Access denied'), ('access.denied_repeated', 'Access denied again (summary of a window)'), ('user.signed_in', 'Signed in'), ('user.default_org_changed', 'Default org changed'), ('user.sign_in_failed', 'Sign-in failed'), ('user.signed_out', 'Signed out'), ('member.suspended', 'Member suspended'), ('member.reactivated', 'Member reactivated'), ('identity.settings_changed', 'Sign-in security settings changed'), ('security.unusual_activity', 'Unusual activity'), ('scim.token_created', 'SCIM token created'), ('scim.token_revoked', 'SCIM token revoked'), ('scim.settings_changed', 'SCIM settings changed'), ('scim.user_created', 'SCIM user provisioned'), ('scim.user_updated', 'SCIM user updated'), ('scim.user_suspended', 'SCIM user deactivated'), ('scim.user_reactivated', 'SCIM user reactivated'), ('scim.user_deleted', 'SCIM user deleted (membership suspended)'), ('scim.group_created', 'SCIM group created'), ('scim.group_updated', 'SCIM group updated'), ('scim.group_deleted', 'SCIM group deleted'), ('scim.role_change_skipped', 'SCIM role change skipped (last owner)'), ('token.scope_denied', 'Token scope denied'), ('session.revoked', 'Session revoked'), ('session.revoked_all', 'Other sessions revoked'), ('member.sessions_revoked', "Member's sessions revoked by an admin"), ('sso.configured', 'SSO configured'), ('sso.domain_added', 'SSO domain added'), ('sso.domain_removed', 'SSO domain removed'), ('sso.domain_verified', 'SSO domain verified'), ('sso.group_mapping_set', 'Group role mapping set'), ('sso.group_mapping_removed', 'Group role mapping removed'), ('sso.failed', 'SSO sign-in failed'), ('sso.recovery_sign_in', 'Password sign-in despite SSO required (recovery)'), ('sso.account_linked', 'SSO identity linked to an account'), ('two_factor.enrolled', 'Second factor added'), ('two_factor.removed', 'Second factor removed'), ('two_factor.verified', 'Second factor passed'), ('two_factor.failed', 'Second factor failed'), ('two_factor.recovery_codes_generated', 'Recovery codes generated'), ('two_factor.recovery_code_used', 'Recovery code used'), ('environment.created', 'Environment created'), ('environment.updated', 'Environment updated'), ('environment.archived', 'Environment archived'), ('environment.unarchived', 'Environment unarchived'), ('environment.authorization_relaxed', 'Environment authorization relaxed'), ('environment.authorization_required', 'Environment authorization required'), ('environment.renamed', 'Environment renamed'), ('report.received', 'Report received'), ('snapshot.created', 'Snapshot created'), ('flow.created', 'Flow created'), ('flow.updated', 'Flow updated'), ('flow.renamed', 'Flow renamed'), ('flow.archived', 'Flow archived'), ('flow.unarchived', 'Flow unarchived'), ('trail.created', 'Trail created'), ('trail.updated', 'Trail updated'), ('artifact.reported', 'Artifact reported'), ('attestation.created', 'Attestation created'), ('attestation.overridden', 'Attestation overridden'), ('evidence.uploaded', 'Evidence file uploaded'), ('evidence.downloaded', 'Evidence file downloaded'), ('audit_package.downloaded', 'Audit package downloaded'), ('custom_type.created', 'Custom attestation type created'), ('control.created', 'Control created'), ('control.updated', 'Control updated'), ('control.archived', 'Control archived'), ('control.unarchived', 'Control unarchived'), ('custom_type.versioned', 'Custom attestation type new version'), ('custom_type.archived', 'Custom attestation type archived'), ('repository.created', 'Repository first seen'), ('repository.updated', 'Repository renamed, moved or identified'), ('tags.changed', 'Tags changed'), ('policy.created', 'Policy created'), ('policy.versioned', 'Policy new version'), ('policy.attached', 'Policy attached'), ('policy.detached', 'Policy detached'), ('allowlist.added', 'Allowlist entry added'), ('allowlist.removed', 'Allowlist entry removed'), ('action.created', 'Alert action created'), ('action.updated', 'Alert action updated'), ('action.deleted', 'Alert action deleted'), ('action.disabled', 'Alert action disabled'), ('action.tested', 'Alert action test-sent'), ('delivery.redelivered', 'Delivery redelivered'), ('audit_report.requested', 'Audit report requested'), ('audit_report.downloaded', 'Audit report downloaded'), ('audit_report.withdrawn', 'Audit report withdrawn (it printed an erased person)'), ('journal.cosigned', 'Journal checkpoint cosigned by a witness')], max_length=50),
        ),
            migrations.RunPython(
            append_only("audit_auditevent", erasable=(
                ("actor_label", "target_label", "before", "after", "ip", "user_agent"), "erasures")).code,
            _reverse_to_strict, elidable=False),
    ]

{{- define "csm.fullname" -}}
{{- printf "%s-csm" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "csm.labels" -}}
app.kubernetes.io/name: csm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "csm.selector" -}}
app.kubernetes.io/name: csm
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "csm.secretName" -}}
{{- .Values.existingSecret | default (include "csm.fullname" .) -}}
{{- end -}}

{{/* The pod spec every csm process shares: (dict "root" $ "args" (list "web") "extra" probes). "noVolume":
the migration Job, a hook that runs before the evidence claim exists on a first install and needs no files. */}}
{{- define "csm.pod" -}}
{{- $root := .root -}}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: csm
    image: "{{ $root.Values.image.repository }}:{{ $root.Values.image.tag }}"
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    envFrom:
      - configMapRef: {name: {{ include "csm.fullname" $root }}}
      - secretRef: {name: {{ include "csm.secretName" $root }}}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    {{- with .extra }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    volumeMounts:
      - {name: data, mountPath: /var/lib/csm}
      - {name: tmp, mountPath: /tmp}
      {{- if $root.Values.journalKey.existingSecret }}
      - {name: journal-key, mountPath: /etc/csm/journal, readOnly: true}
      {{- end }}
volumes:
  - name: data
    {{- if and $root.Values.persistence.enabled (not .noVolume) }}
    persistentVolumeClaim: {claimName: {{ include "csm.fullname" $root }}-evidence}
    {{- else }}
    emptyDir: {}
    {{- end }}
  - name: tmp
    emptyDir: {}
  {{- if $root.Values.journalKey.existingSecret }}
  - name: journal-key
    secret: {secretName: {{ $root.Values.journalKey.existingSecret }}, defaultMode: 0440}  # group-readable: fsGroup
  {{- end }}
{{- end -}}

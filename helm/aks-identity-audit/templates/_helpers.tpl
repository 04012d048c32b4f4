{{/*
Chart name, truncated to fit Kubernetes name limits.
*/}}
{{- define "aks-identity-audit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. At most 52 characters: the CronJob controller appends an
11-character suffix to Job names, which must stay within 63.
*/}}
{{- define "aks-identity-audit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aks-identity-audit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aks-identity-audit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aks-identity-audit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aks-identity-audit.labels" -}}
helm.sh/chart: {{ include "aks-identity-audit.chart" . }}
{{ include "aks-identity-audit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: audit
{{- end }}

{{- define "aks-identity-audit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aks-identity-audit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aks-identity-audit.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Where history (--state <dir>/state) and reports (<dir>/reports/<timestamp>/, the
working directory) go: the claim, or the /tmp emptyDir (lost after each run).
*/}}
{{- define "aks-identity-audit.dataDir" -}}
{{- if .Values.persistence.enabled -}}
/var/lib/aks-identity-audit
{{- else -}}
/tmp
{{- end }}
{{- end }}

{{- define "aks-identity-audit.claimName" -}}
{{- default (printf "%s-data" (include "aks-identity-audit.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{- define "aks-identity-audit.smtpSecretName" -}}
{{- default (printf "%s-smtp" (include "aks-identity-audit.fullname" .)) .Values.smtp.existingSecret }}
{{- end }}

{{- define "aks-identity-audit.webhooksSecretName" -}}
{{- default (printf "%s-webhooks" (include "aks-identity-audit.fullname" .)) .Values.webhooks.existingSecret }}
{{- end }}

{{- define "aks-identity-audit.suppressionsConfigMap" -}}
{{- default (printf "%s-suppressions" (include "aks-identity-audit.fullname" .)) .Values.suppressions.existingConfigMap }}
{{- end }}

{{/*
TOML for a map: scalars and arrays of scalars as `key = value` lines first, then
each nested map as a [table] (recursively, dotted headers). null values are left
out (TOML has no null). JSON string escapes are valid TOML basic-string escapes.
Call with (dict "map" .Values.config "prefix" "").
*/}}
{{- define "aks-identity-audit.toml" -}}
{{- $map := .map }}
{{- $prefix := .prefix }}
{{- range $key := keys $map | sortAlpha }}
{{- $value := get $map $key }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{- if kindIs "slice" $value }}
{{- range $value }}
{{- if or (kindIs "map" .) (kindIs "slice" .) (kindIs "invalid" .) }}
{{- fail (printf "config.%s%s: only arrays of strings, numbers and booleans can be rendered to TOML" $prefix $key) }}
{{- end }}
{{- end }}
{{- end }}
{{ include "aks-identity-audit.tomlKey" $key }} = {{ toJson $value }}
{{- end }}
{{- end }}
{{- range $key := keys $map | sortAlpha }}
{{- $value := get $map $key }}
{{- if kindIs "map" $value }}
{{- $header := printf "%s%s" $prefix (include "aks-identity-audit.tomlKey" $key) }}

[{{ $header }}]
{{- include "aks-identity-audit.toml" (dict "map" $value "prefix" (printf "%s." $header)) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aks-identity-audit.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
Fails on config keys that a chart value passes as a flag: the flag would win without
a word, and the key would be silently ignored.
*/}}
{{- define "aks-identity-audit.validate" -}}
{{- $config := .Values.config }}
{{- $azure := dict }}
{{- if kindIs "map" $config.azure }}{{ $azure = $config.azure }}{{ end }}
{{- $mail := dict }}
{{- if kindIs "map" $config.mail }}{{ $mail = $config.mail }}{{ end }}
{{- if and .Values.baseline.existingConfigMap (include "aks-identity-audit.isSet" (dict "map" $config "key" "baseline")) }}
{{- fail "config.baseline and baseline.existingConfigMap are both set: the chart passes the ConfigMap's file as --baseline, which wins. Remove one" }}
{{- end }}
{{- if and .Values.suppressions.enabled (include "aks-identity-audit.isSet" (dict "map" $config "key" "suppressions")) }}
{{- fail "config.suppressions and suppressions.enabled are both set: the chart passes its file as --suppressions, which wins. Use suppressions.content or suppressions.existingConfigMap" }}
{{- end }}
{{- $caBundle := or .Values.caBundle.configMap .Values.caBundle.secret }}
{{- if and $caBundle (include "aks-identity-audit.isSet" (dict "map" $azure "key" "ca_cert")) }}
{{- fail "config.azure.ca_cert and caBundle are both set: the chart passes the bundle as --ca-cert, which wins. Use caBundle (a file named in config must be mounted to be read)" }}
{{- end }}
{{- if and $caBundle .Values.caBundle.smtp (include "aks-identity-audit.isSet" (dict "map" $mail "key" "smtp_ca_cert")) }}
{{- fail "config.mail.smtp_ca_cert and caBundle (with caBundle.smtp) are both set: the chart passes the bundle as --smtp-ca-cert, which wins. Use caBundle, or set caBundle.smtp to false" }}
{{- end }}
{{- if and .Values.upload.url (include "aks-identity-audit.isSet" (dict "map" $config "key" "upload")) }}
{{- fail "config.upload and upload.url are both set: the chart passes upload.url as --upload, which wins. Use upload.url" }}
{{- end }}
{{- if and .Values.upload.baseUrl (include "aks-identity-audit.isSet" (dict "map" $config "key" "upload_base_url")) }}
{{- fail "config.upload_base_url and upload.baseUrl are both set: the chart passes upload.baseUrl as --upload-base-url, which wins. Use upload.baseUrl" }}
{{- end }}
{{- if and .Values.reports.keep (include "aks-identity-audit.isSet" (dict "map" $config "key" "keep_reports")) }}
{{- fail "config.keep_reports and reports.keep are both set: the chart passes reports.keep as --keep-reports, which wins. Use reports.keep (or set it to \"\" to use config.keep_reports)" }}
{{- end }}
{{- if and .Values.lang (include "aks-identity-audit.isSet" (dict "map" $config "key" "lang")) }}
{{- fail "config.lang and lang are both set: the chart passes lang as --lang, which wins. Use lang (or set it to \"\" to use config.lang)" }}
{{- end }}
{{- $volumes := list "tmp" "config" }}
{{- if .Values.persistence.enabled }}{{ $volumes = append $volumes "data" }}{{ end }}
{{- range .Values.extraVolumes }}{{ $volumes = append $volumes .name }}{{ end }}
{{- if ne (len $volumes) (len (uniq $volumes)) }}
{{- fail (printf "extraVolumes: a volume name is used twice (%s)" (join ", " $volumes)) }}
{{- end }}
{{- $paths := list "/tmp" "/etc/aks-identity-audit" "/var/lib/aks-identity-audit" }}
{{- range .Values.extraVolumeMounts }}{{ $paths = append $paths (trimSuffix "/" .mountPath) }}{{ end }}
{{- if ne (len $paths) (len (uniq $paths)) }}
{{- fail (printf "extraVolumeMounts: a mountPath is used twice (%s)" (join ", " $paths)) }}
{{- end }}
{{- range .Values.extraVolumeMounts }}
{{- if not (has .name $volumes) }}
{{- fail (printf "extraVolumeMounts: %s mounts the volume %q, which is neither in extraVolumes nor one of the chart's (%s)" .mountPath .name (join ", " $volumes)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" when the map has the key with a non-null value (null keys are not rendered). */}}
{{- define "aks-identity-audit.isSet" -}}
{{- if and (hasKey .map .key) (not (kindIs "invalid" (index .map .key))) }}true{{ end }}
{{- end }}

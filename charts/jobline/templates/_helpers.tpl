{{/* Names and labels shared by the templates. */}}
{{- define "jobline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "jobline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jobline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "jobline.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jobline.labels" -}}
{{ include "jobline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "jobline.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The peering object's name (HA only). */}}
{{- define "jobline.peering" -}}
{{ include "jobline.fullname" . }}
{{- end -}}

{{- define "jobline.ha" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* RBAC rules (docs/rbac.md explains each). */}}
{{- define "jobline.namespacedRules" }}
# QueuedJobs: watched; created by schedules; labels patched (phase/queue/handler); deleted by TTL,
# queue retention, schedule history limits and Replace.
- apiGroups: ["jobline.dev"]
  resources: ["queuedjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# JobQueues and JobSchedules are only read; their status is written.
- apiGroups: ["jobline.dev"]
  resources: ["jobqueues", "jobschedules"]
  verbs: ["get", "list", "watch"{{ if .Values.dashboard.enabled }}, "patch"{{ end }}]
- apiGroups: ["jobline.dev"]
  resources: ["queuedjobs/status", "jobqueues/status", "jobschedules/status"]
  verbs: ["get", "patch"]
# Owner references with blockOwnerDeletion (pods -> job, jobs -> schedule) need this where the
# OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift).
- apiGroups: ["jobline.dev"]
  resources: ["queuedjobs/finalizers", "jobschedules/finalizers"]
  verbs: ["update"]
# One worker pod per attempt.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
{{- if .Values.dashboard.enabled }}
# The dashboard's attempt log view.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
# One Event per job transition.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{- define "jobline.clusterRules" }}
# kopf discovers and watches the resources it serves through their CRDs.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- if not .Values.watch.all }}
# kopf resolves the namespaces it serves (it accepts glob patterns) by watching namespaces.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.webhook.generateCertificate) }}
# Only without the chart's certificate (each replica self-signs, e.g. manifests/install.yaml): kopf then
# keeps the webhook's configuration (URL, caBundle) current; it manages a validating and a (here empty)
# mutating configuration, both named jobline.dev. It creates them first (RBAC cannot narrow `create` by
# name), then patches only those two. With the chart's certificate the chart owns the configuration and
# the operator gets no rights on webhook configurations at all.
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  verbs: ["create"]
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  resourceNames: ["jobline.dev"]
  verbs: ["get", "patch"]
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  verbs: ["list", "watch"]
{{- end }}
{{- if .Values.dashboard.enabled }}
# The dashboard checks its callers' tokens and rights.
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
{{- end }}
